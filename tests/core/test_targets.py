"""Pruning targets as strategies: the counted ones keep every cut, the measured one (latency) keeps only a cut
that is measured faster, sets aside the groups of one that is not, cuts a group to the next width that pays or not
at all, and learns from what it measured."""

import pytest
import torch

from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.importance import channel_costs
from nnunet_pruning.core.pruner import Pruner
from nnunet_pruning.core.schedule import PruningSchedule
from nnunet_pruning.core.targets import GflopsTarget, LatencyTarget, ParamsTarget, Verdict, _cut_copy, make_target

from tests.tiny import tiny_net

SHAPE = (2, 16, 16)


def _pruner(metric="params", latency=None, method="random_largest", **kwargs):
    net = tiny_net("plain", 2, 4, dtype=torch.float32)
    return Pruner(net, PruningSchedule(method=method, target_metric=metric, **kwargs), SHAPE, latency=latency)


class FakeLatency:
    """A latency model whose measurement is a function of the network's parameter count."""

    class table:
        base_seconds = 1.0

    def __init__(self, seconds):
        self.seconds = seconds

    def measure(self, network):
        return self.seconds(sum(p.numel() for p in network.parameters()))

    def savings(self, groups):
        return {g.name: 0.01 * (i + 1) for i, g in enumerate(groups)}

    def narrowing(self, groups):  # time falls evenly: the next width measured is a quarter narrower
        return {g.name: (g.width - max(1, g.width // 4), 0.01 * (i + 1)) for i, g in enumerate(groups)}


@pytest.mark.parametrize("metric, kind", [("params", ParamsTarget), ("gflops", GflopsTarget)])
def test_counted_targets_keep_every_cut_and_count_exactly(metric, kind):
    pruner = _pruner(metric)
    target = make_target(pruner)
    assert isinstance(target, kind) and target.counted and target.name == metric
    assert target.check({"any": [0]}, 1.0, 0.5) == Verdict(keep=True)
    assert target.stuck(exhausted=False, removed={}) and not target.stuck(exhausted=False, removed={"g": 1})
    if metric == "params":
        assert target.costs() == {g.name: channel_costs(g) for g in pruner.groups}
        assert target.measure(pruner.network) == sum(p.numel() for p in pruner.network.parameters())
    floors = {g.name: 1 for g in pruner.groups}
    assert target.round_floors(floors) == floors


def test_the_latency_target_needs_a_latency_model():
    with pytest.raises(PruningError, match="the latency target needs a LatencyModel"):
        _pruner("latency")


def test_latency_keeps_only_faster_cuts_and_sets_aside_the_groups_of_the_others():
    slower = _pruner("latency", latency=FakeLatency(lambda params: 2.0 - params * 1e-9),  # narrower is slower
                     method="taylor")
    target = slower.target
    assert isinstance(target, LatencyTarget) and not target.counted and target.whole_cuts
    target.begin_step()
    group = slower.groups[0]
    verdict = target.check({group.name: [0]}, 1.0, 0.5)
    assert not verdict.keep and not verdict.overshot and target.set_aside == {group.name}
    assert target.costs()[group.name] == 0 and target.costs()[slower.groups[1].name] > 0
    assert not target.stuck(exhausted=False, removed={}) and target.stuck(exhausted=True, removed={})

    faster = _pruner("latency", latency=FakeLatency(lambda params: params / 1e5))
    target = faster.target
    target.begin_step()
    current = target.measure(faster.network)
    verdict = target.check({group.name: [0, 1]}, current, 0.0)
    assert verdict.keep and verdict.after < current
    assert 0.5 <= target.correction <= 2.0 and target.correction != 1.0  # learned from the measurement
    floors = target.round_floors({g.name: 1 for g in faster.groups})  # the width the table aims at
    assert all(floors[g.name] == max(1, g.width - max(1, g.width // 4)) for g in faster.groups)
    assert target.round_floors({g.name: g.width + 1 for g in faster.groups}) == {g.name: g.width for g in faster.groups}


def test_latency_refuses_a_cut_far_past_the_goal_twice_then_keeps_it():
    """A cut whose time fell far more than the table said (one demo round: an 11% need, 28% measured) is refused
    (MAX_OVERSHOT times a step), the correction learnt from it; a step starts counting afresh."""
    full = _pruner("params").measure()["params"]
    pruner = _pruner("latency", latency=FakeLatency(lambda params: params / full))  # unpruned: base_seconds
    target = pruner.target
    target.begin_step()
    current = target.measure(pruner.network)
    widest = max(pruner.groups, key=lambda g: g.width)
    cut = {widest.name: list(range(widest.width // 2))}
    after = target.measure(_cut_copy(pruner, cut))
    goal = current - 0.1 * (current - after)  # a tenth of what the cut saves was asked
    assert goal - after > max(0.5 * (current - goal), LatencyTarget.OVERSHOOT * pruner.original["latency"])
    verdicts = [target.check(cut, current, goal) for _ in range(2)]
    assert target.correction == 1.0  # not learnt from a refused cut: the pruner scales the round's need instead
    verdicts.append(target.check(cut, current, goal))
    assert [(v.keep, v.overshot) for v in verdicts] == [(False, True), (False, True), (True, False)]
    assert all(v.after == pytest.approx(after) for v in verdicts)
    target.begin_step()
    assert target.check(cut, current, goal).overshot
    near = target.check(cut, current, after + 0.01 * pruner.original["latency"])  # within the slack: kept
    assert near.keep and not near.overshot


def test_a_step_whose_estimates_fall_far_short_lands_near_its_goal():
    """The table says a channel saves far less than it does: the first round cuts far too much and is refused; the
    next, going for the need scaled by asked / saved, stop near the goal (without the rule: 57% for a 90% goal)."""
    class Underestimated(FakeLatency):
        def savings(self, groups):
            return {g.name: 0.001 for g in groups}

        def narrowing(self, groups):
            return {g.name: (g.width - max(1, g.width // 4), 0.001) for g in groups}

    full = _pruner("params").measure()["params"]
    pruner = _pruner("latency", latency=Underestimated(lambda params: params / full), keep_fraction=0.9,
                     step_fraction=0.1)
    record = pruner.step(0)
    assert pruner.target_reached
    slack = max(0.5 * 0.1, LatencyTarget.OVERSHOOT)
    assert 0.9 - slack <= record["latency_fraction"] <= 0.9


@pytest.mark.parametrize("method", ["random_largest", "taylor"])
def test_the_groups_of_a_cut_measured_no_faster_are_set_aside_for_the_step(method):
    """Random-largest picks the widest groups first, STAMP the same lowest-ranked channels: either would choose the
    same groups again. A cut of theirs measured no faster sets them aside for the rest of the step (their saving is
    0 there), and the step goes on elsewhere at the same need."""
    pruner = _pruner("latency", latency=FakeLatency(lambda params: 1.0), method=method)  # nothing is ever faster
    target = pruner.target
    target.begin_step()
    first, second = pruner.groups[-1].name, pruner.groups[0].name
    verdicts = [target.check({first: [0]}, 1.0, 0.5) for _ in range(3)] + [target.check({second: [0]}, 1.0, 0.5)]
    assert all(not v.keep and not v.overshot for v in verdicts)
    assert target.set_aside == {first, second} and target.costs()[first] == 0 == target.costs()[second]
    assert target.weights()[first] == 0 and target.costs()[pruner.groups[1].name] > 0
    target.begin_step()  # another step tries them again
    assert not target.set_aside and target.costs()[first] > 0


def test_random_largest_to_a_latency_passes_over_wide_groups_that_save_nothing():
    """Only the narrow (full-resolution-like) groups' widths decide the time; the table says every group saves. A
    random-largest step tries the widest groups first, finds them no faster, sets them aside and reaches its target
    (before: three refused cuts of the wide groups ended the run short, as RandomLargestLatency on a 2-core CPU)."""
    from nnunet_pruning.core.groups import find_groups

    probe = _pruner("params")
    narrow = {g.name for g in probe.groups if g.width <= 8}
    full = sum(g.width for g in probe.groups if g.name in narrow)

    class NarrowDecides(FakeLatency):
        def measure(self, network):
            return 0.5 + 0.5 * sum(g.width for g in find_groups(network) if g.name in narrow) / full

    pruner = _pruner("latency", latency=NarrowDecides(None), keep_fraction=0.85, step_fraction=0.15)
    record = pruner.step(0)
    assert pruner.target_reached and record["latency_fraction"] <= 0.85
    assert set(record["groups"]) <= narrow  # the wide groups kept every channel
    assert pruner.target.set_aside and not pruner.target.set_aside & narrow


def test_a_step_that_set_every_group_aside_after_a_kept_cut_does_not_end_the_run():
    """The groups left were set aside after a cut was kept: the next step tries them again (one demo run stopped
    at 61.5% for a 50% target in its second step of three); with nothing kept in the step, nothing is left."""
    pruner = _pruner("latency", latency=FakeLatency(lambda params: 1.0))
    target = pruner.target
    target.begin_step()
    assert target.nothing_left({})
    target.set_aside.add(pruner.groups[0].name)
    assert not target.nothing_left({pruner.groups[1].name: 2}) and target.nothing_left({})
    assert make_target(_pruner("params")).nothing_left({"g": 1})
