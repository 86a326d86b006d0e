"""Removal is exact: a network whose removed channels are masked gives the pruned network's outputs."""

import copy
import random

import pytest
import torch

from nnunet_pruning.adapter.architectures import unet_spec
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.groups import find_groups
from nnunet_pruning.core.surgery import mask_channels, remove_channels

from tests.tiny import MATRIX, MATRIX_IDS, max_difference, outputs, tiny_input, tiny_net

ATOL = 1e-6  # float64 throughout; observed differences are ~1e-14


def _mask_then_remove(net, group, channels, x, **kwargs):
    """Mask, run, remove, run: return the largest output difference."""
    mask_channels(group, channels)
    reference = outputs(net, x)
    remove_channels(net, group, channels, **kwargs)
    pruned = outputs(net, x)
    assert [o.shape for o in pruned] == [o.shape for o in reference]
    return max_difference(reference, pruned)


@pytest.mark.parametrize("architecture,dim,n_stages,deep_supervision", MATRIX, ids=MATRIX_IDS)
def test_every_group_removal_is_exact(architecture, dim, n_stages, deep_supervision):
    """Half of every group's channels masked at once; then the groups are removed one by one, and after each
    removal the output is still the masked network's (so an inexact removal is caught at its group)."""
    net = tiny_net(architecture, dim, n_stages, deep_supervision).eval()
    x = tiny_input(dim, n_stages, batch=1)
    rng = random.Random(0)
    params_before = sum(p.numel() for p in net.parameters())
    groups = find_groups(net)
    chosen = [rng.sample(range(group.width), group.width // 2) for group in groups]
    for group, channels in zip(groups, chosen):
        mask_channels(group, channels)
    reference = outputs(net, x)
    for group, channels in zip(groups, chosen):
        remove_channels(net, group, channels)
        pruned = outputs(net, x)
        assert [o.shape for o in pruned] == [o.shape for o in reference]
        assert max_difference(reference, pruned) < ATOL, group.name
    assert sum(p.numel() for p in net.parameters()) < params_before


@pytest.mark.parametrize("architecture,dim,n_stages,deep_supervision", MATRIX, ids=MATRIX_IDS)
def test_random_sequence_of_removals_stays_exact(architecture, dim, n_stages, deep_supervision):
    net = tiny_net(architecture, dim, n_stages, deep_supervision, seed=3).eval()
    x = tiny_input(dim, n_stages, batch=1)
    groups = find_groups(net)
    rng = random.Random(f"{architecture}{dim}{n_stages}{deep_supervision}")
    removals = 0
    while removals < 30:
        candidates = [g for g in groups if g.width > 1]
        if not candidates:
            break
        group = rng.choice(candidates)
        channels = rng.sample(range(group.width), rng.randint(1, max(1, group.width // 3)))
        assert _mask_then_remove(net, group, channels, x) < ATOL, (removals, group.name)
        removals += 1
    assert removals == 30


def test_batchnorm_running_statistics_follow():
    net = tiny_net("plain", 2, 3, norm="batch")
    x = tiny_input(2, 3)
    net.train()
    for _ in range(3):  # populate running statistics
        outputs(net, x + torch.randn_like(x))
    net.eval()
    for group in find_groups(net):
        norm = group.producers[0].norm
        if norm is None:  # transposed convs have no norm
            continue
        running = norm.running_mean.clone()
        mask_channels(group, [0])
        reference = outputs(net, x)
        keep = remove_channels(net, group, [0])
        assert torch.equal(norm.running_mean, running[keep])
        assert norm.num_features == len(keep)
        assert max_difference(reference, outputs(net, x)) < ATOL


def test_minimum_width_refused_and_nothing_changes():
    net = tiny_net("plain", 2, 3)
    group = find_groups(net)[0]
    before = copy.deepcopy(net.state_dict())
    with pytest.raises(PruningError, match=r"would leave 1, below the minimum width 2; remove at most 2"):
        remove_channels(net, group, [0, 1, 2], min_width=2)
    with pytest.raises(PruningError, match="below the minimum width 1"):
        remove_channels(net, group, range(4))
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    remove_channels(net, group, [0, 1, 2], min_width=1)
    assert group.width == 1


@pytest.mark.parametrize("channels,message", [([], "no channels given"), ([4], "out of range"),
                                              ([-1], "out of range")])
def test_bad_channel_indices(channels, message):
    net = tiny_net("plain", 2, 3)
    with pytest.raises(PruningError, match=message):
        remove_channels(net, find_groups(net)[0], channels)


def test_aliases_and_cached_counts_stay_consistent():
    spec = unet_spec("plain", 2, 3, base_width=4)
    features = spec.network_arch_init_kwargs["features_per_stage"]
    from nnunet_pruning.adapter.architectures import build_unet

    net = build_unet(spec)
    groups = {g.name: g for g in find_groups(net)}
    remove_channels(net, groups["encoder.stages.1.0.convs.1"], [0, 1, 2])
    remove_channels(net, groups["decoder.transpconvs.0"], [1])
    assert net.decoder.encoder is net.encoder
    block = net.encoder.stages[1][0].convs[1]
    assert block.all_modules[0] is block.conv and block.all_modules[1] is block.norm
    assert block.output_channels == 5 and net.encoder.stages[1][0].output_channels == 5
    assert net.encoder.output_channels == [4, 5, 16]
    assert features == [4, 8, 16]  # the plans' list is not mutated
    assert net.decoder.stages[0].convs[0].conv.in_channels == 7 + 5  # upsampled 8-1, skip 8-3
    state = net.state_dict()
    assert state["encoder.stages.1.0.convs.1.conv.weight"].shape == \
        state["decoder.encoder.stages.1.0.convs.1.all_modules.0.weight"].shape == (5, 8, 3, 3)


def _train_step(net, optimizer, x, target):
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(net(x), target)
    loss.backward()
    optimizer.step()


@pytest.mark.parametrize("make_optimizer", [
    lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.99, nesterov=True, weight_decay=3e-5),
    lambda p: torch.optim.Adam(p, lr=1e-3, weight_decay=3e-5),
], ids=["sgd-nesterov", "adam"])
@pytest.mark.parametrize("architecture", ["plain", "resenc"])
def test_optimizer_state_is_sliced_not_reset(make_optimizer, architecture):
    """Prune then step == step (on the masked net) then prune: parameters and optimizer state agree."""
    net = tiny_net(architecture, 2, 3).train()
    x = tiny_input(2, 3)
    target = torch.randint(0, 3, (x.shape[0], *x.shape[2:]))
    optimizer = make_optimizer(net.parameters())
    for _ in range(3):  # build up momentum / moments
        _train_step(net, optimizer, x, target)
    groups = find_groups(net)
    chosen = {g.name: list(range(0, g.width, 3)) for g in groups if g.width > 1}
    for group in groups:
        if group.name in chosen:
            mask_channels(group, chosen[group.name])

    masked = copy.deepcopy(net)
    masked_optimizer = make_optimizer(masked.parameters())
    masked_optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))  # load_state_dict shares tensors

    for group in groups:  # pruned: remove, then step
        if group.name in chosen:
            remove_channels(net, group, chosen[group.name], optimizer=optimizer)
    _train_step(net, optimizer, x, target)

    _train_step(masked, masked_optimizer, x, target)  # masked: step, then remove
    masked_groups = find_groups(masked)
    for group in masked_groups:
        if group.name in chosen:
            remove_channels(masked, group, chosen[group.name], optimizer=masked_optimizer)

    with_state = 0
    for (name, p), q in zip(net.named_parameters(), masked.parameters()):
        assert p.shape == q.shape, name
        torch.testing.assert_close(p, q, rtol=0, atol=1e-10, msg=lambda m: f"{name}: {m}")
        state_p, state_q = optimizer.state[p], masked_optimizer.state[q]
        assert state_p.keys() == state_q.keys()
        for key in state_p:
            torch.testing.assert_close(state_p[key], state_q[key], rtol=0, atol=1e-10, msg=f"{name} {key}")
        with_state += any(torch.is_tensor(v) and v.dim() > 0 and v.abs().sum() > 0 for v in state_p.values())
    # all but the unused deep-supervision heads carry non-zero momentum/moments: slicing was exercised
    assert with_state >= len(list(net.parameters())) - 2 * (len(net.decoder.seg_layers) - 1)
