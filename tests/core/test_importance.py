"""Taylor scores, their normalisation, and per-channel costs."""

import copy
import random

import pytest
import torch

from nnunet_pruning.core.dropout import TargetedDropout
from nnunet_pruning.core.groups import find_groups
from nnunet_pruning.core.importance import TaylorScorer, channel_costs, conv_voxels, normalise, taylor_parameters
from nnunet_pruning.core.measure import count_gflops, count_params
from nnunet_pruning.core.pruner import select_channels
from nnunet_pruning.core.surgery import mask_channels, remove_channels

from tests.tiny import tiny_input, tiny_net


def _train_batches(net, scorer, x, n=3):
    target = torch.randint(0, 3, (x.shape[0], *x.shape[2:]))
    for _ in range(n):
        net.zero_grad()
        torch.nn.functional.cross_entropy(net(x + 0.1 * torch.randn_like(x)), target).backward()


@pytest.mark.parametrize("architecture", ["plain", "resenc"])
def test_useless_channel_is_ranked_last(architecture):
    net = tiny_net(architecture, 2, 3).train()
    groups = find_groups(net)
    scorer = TaylorScorer(groups)
    scorer.attach()
    victim = groups[2]
    mask_channels(victim, [1])  # channel 1 of this group can no longer change the loss
    _train_batches(net, scorer, tiny_input(2, 3))
    scores = normalise(scorer.scores)
    assert scores[victim.name][1] == 0
    assert all(float(s.min()) > 0 for name, s in scores.items() if name != victim.name)
    everything = sorted((float(v), name, c) for name, s in scores.items() for c, v in enumerate(s))
    assert everything[0][1:] == (victim.name, 1)
    scorer.detach()


def test_scores_accumulate_only_in_training_with_grad():
    net = tiny_net("plain", 2, 3)
    scorer = TaylorScorer(find_groups(net))
    scorer.attach()
    x = tiny_input(2, 3)
    net.eval()
    net(x).sum().backward()
    assert all(float(s.abs().sum()) == 0 for s in scorer.scores.values())
    net.train()
    with torch.no_grad():
        net(x)
    assert all(float(s.abs().sum()) == 0 for s in scorer.scores.values())
    net(x).square().mean().backward()
    assert all(float(s.abs().sum()) > 0 for s in scorer.scores.values())


def test_normalise_gives_n_equal_channels_one_over_root_n():
    scores = normalise({"a": torch.ones(4, dtype=torch.float64), "b": -torch.ones(16, dtype=torch.float64)})
    assert torch.allclose(scores["a"], torch.full((4,), 0.5, dtype=torch.float64))
    assert torch.allclose(scores["b"], torch.full((16,), 0.25, dtype=torch.float64))


@pytest.mark.parametrize("architecture", ["plain", "resenc"])
@pytest.mark.parametrize("use_flops", [False, True])
def test_channel_costs_match_measured_savings(architecture, use_flops):
    """Removing one channel saves what channel_costs says (exactly, for one channel alone)."""
    net = tiny_net(architecture, 3, 3, dtype=torch.float32)
    shape = (2, 8, 8, 8)
    measure = (lambda n: count_gflops(n, 2, shape[1:]) * 1e9) if use_flops else count_params
    for index, group in enumerate(find_groups(net)):
        clone = copy.deepcopy(net)
        clone_group = find_groups(clone)[index]
        before = measure(clone)
        expected = channel_costs(clone_group, conv_voxels(clone, shape) if use_flops else None)
        remove_channels(clone, clone_group, [0])
        assert before - measure(clone) == pytest.approx(expected, rel=1e-9), group.name


def test_flops_weighting_prunes_high_resolution_stages():
    """Plain STAMP takes the wide low-resolution layers first; the FLOPs-weighted variant also takes
    full-resolution channels, where the compute is."""
    net = tiny_net("plain", 3, 4, dtype=torch.float32)
    groups = find_groups(net)
    equal = normalise({g.name: torch.ones(g.width, dtype=torch.float64) for g in groups})
    voxels = conv_voxels(net, (2, 16, 16, 16))
    flops = {g.name: channel_costs(g, voxels) for g in groups}
    top = max(flops.values())
    weights = {name: value / top for name, value in flops.items()}
    costs = {g.name: channel_costs(g) for g in groups}
    need = 0.3 * count_params(net)
    level = {g.name: g.level for g in groups}
    plain = select_channels(groups, "taylor", need, costs, 1, random.Random(0), equal)
    weighted = select_channels(groups, "taylor_flops", need, costs, 1, random.Random(0), equal, weights)
    assert all(level[name] > 0 for name in plain)
    assert any(level[name] == 0 for name in weighted)


def test_absolute_per_batch_does_not_let_opposite_terms_cancel():
    """The reference sums signed per-batch terms (|.| only when ranking); Molchanov et al. sum |term|."""
    net = tiny_net("plain", 2, 3, dtype=torch.float32).train()
    groups = find_groups(net)
    signed, absolute = TaylorScorer(groups), TaylorScorer(groups, absolute_per_batch=True)
    for scorer in (signed, absolute):
        scorer.attach()
    x = tiny_input(2, 3, dtype=torch.float32)
    for sign in (1.0, -1.0):  # the same batch with the loss's sign flipped: per-batch terms of opposite sign
        net.zero_grad()
        (sign * net(x).sum()).backward()
    for scorer in (signed, absolute):
        scorer.detach()
    name = groups[0].name
    assert torch.allclose(signed.scores[name], torch.zeros_like(signed.scores[name]), atol=1e-6)
    assert absolute.scores[name].abs().sum() > 0 and (absolute.scores[name] >= 0).all()


def _deep_supervision_loss(net, x):
    return sum((k + 1) * (o ** 2).mean() for k, o in enumerate(net(x)))


@pytest.mark.parametrize("architecture", ["plain", "resenc"])
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("absolute", [False, True])
def test_scores_read_off_parameter_gradients_equal_the_activation_terms(architecture, dim, absolute):
    """Euler's theorem (importance.py): a norm's affine followed by LeakyReLU, a transposed conv's weight slice and
    bias, are positively homogeneous of degree 1, so sum(theta * dL/dtheta) per channel IS sum(a * dL/da). Checked
    against hooks on the activations themselves, in float64, with deep supervision and targeted dropout on (both
    see the same forward passes), the loss scaled as a GradScaler scales it (the scale a tensor)."""
    net = tiny_net(architecture, dim, 4, deep_supervision=True).train()
    torch.manual_seed(0)  # the dropout masks
    groups = find_groups(net)
    hooked = TaylorScorer(groups, absolute_per_batch=absolute, from_parameters=False)
    read = TaylorScorer(groups, grad_scale=lambda: torch.tensor(8.0, dtype=torch.float64), absolute_per_batch=absolute)
    for hooks in (hooked, read, TargetedDropout(groups, initial=0.3)):
        hooks.attach()
    x = tiny_input(dim, 4)
    for scale in (8.0, 8.0, 8.0):
        net.zero_grad()
        (scale * _deep_supervision_loss(net, x)).backward()
    streams = {g.name for g in groups if ".stream" in g.name}
    assert {g.name for g in groups if taylor_parameters(g) is None} == streams  # a stream sums several blocks
    assert bool(streams) == (architecture == "resenc") and read.compiles == (architecture == "plain")
    assert len(read._handles) == sum(len(taylor_parameters(g) or g.activations) for g in groups)
    for group in groups:
        expected = hooked.scores[group.name] / 8.0
        assert float(expected.abs().max()) > 0, group.name  # (a channel dropped out in every batch scores 0)
        assert torch.allclose(read.scores[group.name], expected, rtol=1e-10, atol=0), group.name


def test_a_batch_whose_terms_are_not_finite_is_left_out():
    """fp16 gradients that overflowed (the GradScaler skips that optimizer step) add nothing to any score."""
    net = tiny_net("resenc", 2, 3).train()  # both kinds: parameter gradients and a hooked stream
    scorer = TaylorScorer(find_groups(net))
    scorer.attach()
    x = tiny_input(2, 3)
    net(x).square().mean().backward()
    before = {k: v.clone() for k, v in scorer.scores.items()}
    assert all(bool(torch.isfinite(v).all()) and float(v.abs().sum()) > 0 for v in before.values())
    net.zero_grad()
    (net(x).square().mean() * float("inf")).backward()
    assert all(torch.equal(before[k], v) for k, v in scorer.scores.items())
    net.zero_grad()
    net(x).square().mean().backward()
    assert all(not torch.equal(before[k], v) for k, v in scorer.scores.items())


def test_scoring_from_parameters_compiles_into_one_graph_and_scores_alike():
    """No hook of the scorer runs in the forward pass: with targeted dropout's hooks too, dynamo makes one graph of
    the network with no break, and the gradients of the compiled graph (AOTAutograd) give the eager scores."""
    from torch import _dynamo

    net = tiny_net("plain", 2, 3, deep_supervision=True, dtype=torch.float32).train()
    x = tiny_input(2, 3, dtype=torch.float32)
    scores = []
    for compiled in (False, True):
        model = copy.deepcopy(net)
        groups = find_groups(model)
        scorer, dropout = TaylorScorer(groups), TargetedDropout(groups, initial=0.2)
        scorer.attach()
        dropout.attach()
        if compiled:
            _dynamo.reset()
            explained = _dynamo.explain(model)(x)
            assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons
            model = torch.compile(model, backend="aot_eager")
        dropout.probabilities = dict.fromkeys(dropout.probabilities, 0.0)  # the same forward in both runs
        for _ in range(2):
            model.zero_grad(set_to_none=True)
            _deep_supervision_loss(model, x).backward()
        scores.append(scorer.scores)
    _dynamo.reset()
    for name, eager in scores[0].items():
        assert torch.allclose(scores[1][name], eager, rtol=1e-5, atol=0), name
