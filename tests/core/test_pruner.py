"""Pruning steps: how much, from where, reproducibly, and resumable from a checkpointed state."""

import copy

import pytest
import torch

from nnunet_pruning.adapter.architectures import build_unet
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.measure import count_params
from nnunet_pruning.core.pruner import Pruner
from nnunet_pruning.core.resizable import make_resizable
from nnunet_pruning.core.schedule import METHODS, PruningSchedule

from tests.tiny import tiny_input, tiny_net, tiny_spec

SHAPE = (2, 16, 16)


def _pruner(method="random_largest", seed=0, net=None, **kwargs):
    settings = dict(method=method, keep_fraction=0.4, warmup_epochs=1, every_epochs=1, step_fraction=0.2)
    settings.update(kwargs)
    net = net if net is not None else tiny_net("plain", 2, 4, dtype=torch.float32)
    return Pruner(net, PruningSchedule(**settings), SHAPE, seed=seed)


def _train(pruner, batches=2):
    net = pruner.network.train()
    x = tiny_input(2, 4, dtype=torch.float32)
    for _ in range(batches):
        net.zero_grad()
        net(x).square().mean().backward()


def _widths(net):
    return [tuple(p.shape) for p in net.parameters()]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("metric", ["params", "gflops"])
def test_steps_shrink_to_the_target(method, metric):
    pruner = _pruner(method, target_metric=metric)
    pruner.attach()
    records = []
    for epoch in range(6):
        _train(pruner)
        record = pruner.maybe_step(epoch, ema_pseudo_dice=0.5)
        if record:
            records.append(record)
    pruner.detach()
    fractions = [r[f"{metric}_fraction"] for r in records]
    assert len(records) == 3 and pruner.finished and records[-1]["target_reached"]
    assert fractions[0] == pytest.approx(0.8, abs=0.03) and fractions[1] == pytest.approx(0.6, abs=0.03)
    assert fractions[-1] <= 0.4 + 1e-9 and fractions[-1] > 0.35
    assert records[-1]["params"] == count_params(pruner.network)
    assert records[0]["ema_pseudo_dice"] == 0.5 and records[0]["epoch"] == 0
    assert pruner.maybe_step(7) is None  # finished: no more steps


def test_random_largest_takes_the_widest_groups():
    pruner = _pruner("random_largest", step_fraction=0.05)
    before = {g.name: g.width for g in pruner.groups}
    record = pruner.step(0)
    widest = max(before.values())
    assert all(before[name] == widest for name in record["groups"])


def test_random_largest_is_reproducible_per_seed():
    a, b, c = _pruner(seed=1), _pruner(seed=1), _pruner(seed=2)
    for p in (a, b, c):
        p.step(0)
        p.step(1)
    assert _widths(a.network) == _widths(b.network)
    assert [g.width for g in a.groups] != [g.width for g in c.groups] or \
        [r["groups"] for r in a.log] != [r["groups"] for r in c.log]


@pytest.mark.parametrize("method", ["random_largest", "taylor"])
def test_resume_from_state_continues_identically(method):
    """What --c does: a fresh network loads the pruned weights, a fresh pruner loads the state."""
    straight = _pruner(method, seed=4)
    straight.attach()
    _train(straight)
    straight.step(0)
    state = copy.deepcopy(straight.state_dict())
    weights = copy.deepcopy(straight.network.state_dict())
    _train(straight)
    straight.step(1)

    net = make_resizable(build_unet(tiny_spec("plain", 2, 4), input_channels=2, num_classes=3))
    net.load_state_dict(weights)
    resumed = _pruner(method, seed=999, net=net)  # the seed is overwritten by the saved RNG state
    resumed.load_state_dict(state)
    resumed.attach()
    if method == "taylor":  # the scores since the last step are part of the state; retrain identically
        torch.manual_seed(0)
    assert resumed.original == straight.original and resumed.steps == 1
    if method == "random_largest":
        _train(resumed)
        resumed.step(1)
        assert _widths(resumed.network) == _widths(straight.network)
        untimed = lambda log: [{k: v for k, v in r.items() if k != "seconds"} for r in log]  # noqa: E731
        assert untimed(resumed.log) == untimed(straight.log)


def test_unreachable_target_is_refused_before_training():
    pruner = _pruner(keep_fraction=0.05, min_width=4)
    with pytest.raises(PruningError, match=r"target unreachable: keeping 5% of the params needs widths below "
                                           r"min_width=4 .* lower min_width or raise keep_fraction"):
        pruner.check_reachable()
    _pruner(keep_fraction=0.2, min_width=1).check_reachable()


def test_min_width_is_respected():
    pruner = _pruner(keep_fraction=0.01, step_fraction=0.99, min_width=2)
    pruner.step(0)
    assert min(g.width for g in pruner.groups) == 2
    assert pruner.finished  # nothing left to remove: the step ends the schedule


def test_a_run_that_stops_short_says_so_and_why():
    """Issue 23.2: a run that merely stopped is not "target reached", in the record, the state and after a
    resume; a run still pruning when training ends is out of epochs."""
    pruner = _pruner(keep_fraction=0.01, step_fraction=0.99, min_width=2)
    record = pruner.step(0)
    assert pruner.finished and not pruner.target_reached and pruner.outcome == "minimum_widths"
    assert record["target_reached"] is False and record["stopped"].startswith("stopped short: every layer")
    resumed = _pruner(keep_fraction=0.01, step_fraction=0.99, min_width=2)
    resumed.load_state_dict(pruner.state_dict())
    assert resumed.outcome == "minimum_widths" and resumed.finished and not resumed.target_reached
    old = dict(pruner.state_dict(), outcome=None)  # a checkpoint from before outcomes were kept
    resumed.load_state_dict(old)
    assert resumed.finished and not resumed.target_reached
    running = _pruner()
    running.step(0)
    assert not running.finished and running.outcome is None
    running.end()
    assert running.outcome == "out_of_epochs" and not running.target_reached
    reached = _pruner(keep_fraction=0.8, step_fraction=0.5)
    assert reached.step(0)["target_reached"] and reached.outcome == "reached" and "stopped" not in reached.log[-1]


def test_a_run_stopped_at_a_full_resolution_floor_names_the_floor():
    pruner = _pruner(keep_fraction=0.01, step_fraction=0.99, min_width=2, min_width_full_resolution=3)
    record = pruner.step(0)
    assert pruner.outcome == "minimum_widths"
    assert record["stopped"] == (
        "stopped short: every layer at its minimum width (full-resolution layers held at >= 3 channels)")


def test_optimizer_state_follows_a_step():
    pruner = _pruner("taylor")
    net = pruner.network
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.99, nesterov=True)
    pruner.attach()
    x = tiny_input(2, 4, dtype=torch.float32)
    for _ in range(2):
        optimizer.zero_grad()
        net(x).square().mean().backward()
        optimizer.step()
    pruner.step(0, optimizer)
    for p in net.parameters():
        buffer = optimizer.state[p].get("momentum_buffer")
        assert buffer is None or buffer.shape == p.shape
    optimizer.zero_grad()
    net(x).square().mean().backward()
    optimizer.step()  # would fail on mismatched momentum shapes


def _handles(pruner):
    return len(pruner.scorer._handles) + len(pruner.dropout._handles)


def test_nothing_is_scored_or_dropped_out_after_the_target():
    """Once the target is reached the hooks come off: the remaining epochs train the final network at full speed."""
    net = tiny_net("plain", 2, 4, dtype=torch.float32).train()
    pruner = Pruner(net, PruningSchedule(keep_fraction=0.5, warmup_epochs=0, every_epochs=1, step_fraction=0.5),
                    SHAPE)
    pruner.attach()
    assert _handles(pruner) > 0
    x = torch.randn(2, *SHAPE)
    net(x).sum().backward()
    record = pruner.step(0)
    assert record["target_reached"] and _handles(pruner) == 0 and 0 <= record["seconds"] < 60
    scores = {k: v.clone() for k, v in pruner.scorer.scores.items()}
    net.zero_grad()
    net(torch.randn(2, *SHAPE)).sum().backward()
    assert all(torch.equal(scores[k], v) for k, v in pruner.scorer.scores.items())  # not scored any more
    resumed = Pruner(tiny_net("plain", 2, 4, dtype=torch.float32), pruner.schedule, SHAPE)
    resumed.attach()
    resumed.load_state_dict(pruner.state_dict())
    assert _handles(resumed) == 0
    resumed.attach()  # what the trainer calls at train start after --c
    assert _handles(resumed) == 0


def test_scores_of_a_checkpoint_written_as_means_are_scaled_to_sums():
    """Checkpoints written before each batch's term became a sum (no ``score_unit``) held means over (batch,
    space): a resume scales them by the voxels per sample of each group's activation."""
    net = tiny_net("plain", 2, 3, dtype=torch.float32).train()
    pruner = Pruner(net, PruningSchedule(), SHAPE)
    pruner.attach()
    net(torch.randn(2, *SHAPE)).sum().backward()
    state = pruner.state_dict()
    assert state["score_unit"] == "sum"
    old = dict(state, scores={k: v / 7 for k, v in state["scores"].items()})
    del old["score_unit"]
    resumed = Pruner(tiny_net("plain", 2, 3, dtype=torch.float32), PruningSchedule(), SHAPE)
    resumed.load_state_dict(old)
    for group in resumed.groups:  # stride 2 per level: a level-L activation has (16 / 2^L)^2 voxels per sample
        per_sample = SHAPE[1] * SHAPE[2] // 4 ** group.level
        assert torch.allclose(resumed.scorer.scores[group.name], state["scores"][group.name] / 7 * per_sample)


def test_scores_stay_on_the_device_and_checkpoint_on_the_cpu():
    net = tiny_net("plain", 2, 4, dtype=torch.float32).train()
    pruner = Pruner(net, PruningSchedule(), SHAPE)
    pruner.attach()
    net(torch.randn(2, *SHAPE)).sum().backward()
    assert all(v.dtype == torch.float64 for v in pruner.scorer.scores.values())
    state = pruner.state_dict()["scores"]
    assert all(v.device.type == "cpu" and v.dtype == torch.float64 for v in state.values())


def test_score_after_target_keeps_the_hooks_for_the_ablation():
    net = tiny_net("plain", 2, 4, dtype=torch.float32).train()
    pruner = Pruner(net, PruningSchedule(keep_fraction=0.5, warmup_epochs=0, every_epochs=1, step_fraction=0.5,
                                         score_after_target=True), SHAPE)
    pruner.attach()
    net(torch.randn(2, *SHAPE)).sum().backward()
    assert pruner.step(0)["target_reached"] and _handles(pruner) > 0


def test_full_resolution_floor():
    """No level-0 group goes below min_width_full_resolution; the others may go down to min_width."""
    net = tiny_net("plain", 2, 4, dtype=torch.float32).train()
    floor = 3
    pruner = Pruner(net, PruningSchedule(method="random_largest", keep_fraction=0.05, warmup_epochs=0,
                                         every_epochs=1, step_fraction=0.95, min_width_full_resolution=floor),
                    SHAPE)
    before = {g.name: g.width for g in pruner.groups}
    pruner.step(0)
    for group in pruner.groups:
        assert group.width >= (min(floor, before[group.name]) if group.level == 0 else 1)
    assert any(g.level == 0 and g.width == floor for g in pruner.groups)
    assert any(g.level > 0 and g.width < floor for g in pruner.groups)
    with pytest.raises(PruningError, match="min_width_full_resolution"):
        PruningSchedule(min_width_full_resolution=-1).validate()
    too_high = PruningSchedule(method="random_largest", keep_fraction=0.01, min_width_full_resolution=4)
    with pytest.raises(PruningError, match=r"min_width_full_resolution=4 at full resolution.*lower the floors"):
        Pruner(tiny_net("plain", 2, 4, dtype=torch.float32), too_high, SHAPE).check_reachable()
