"""Pruning targets as strategies: the counted ones keep every cut, the measured one (latency) keeps only a cut
that is measured faster, gives up after three that are not, and learns from what it measured."""

import random
from types import SimpleNamespace

import pytest
import torch

from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.latency import Comparison
from nnunet_pruning.core.importance import channel_costs
from nnunet_pruning.core.pruner import Pruner
from nnunet_pruning.core.schedule import PruningSchedule
from nnunet_pruning.core.targets import GflopsTarget, LatencyTarget, ParamsTarget, Verdict, make_target

from tests.tiny import tiny_net

SHAPE = (2, 16, 16)


def _pruner(metric="params", latency=None, **kwargs):
    net = tiny_net("plain", 2, 4, dtype=torch.float32)
    return Pruner(net, PruningSchedule(method="random_largest", target_metric=metric, **kwargs), SHAPE,
                  latency=latency)


class FakeLatency:
    """A latency model whose measurement is a function of the network's parameter count, times the machine's
    speed in that round (``drift()``: 1 by default); the two networks of a comparison share a round."""

    class table:
        base_seconds = 1.0

    def __init__(self, seconds, drift=lambda: 1.0):
        self.seconds, self.drift = seconds, drift
        self.prepared_networks = []

    def _true(self, network):
        return self.seconds(sum(p.numel() for p in network.parameters()))

    def measure(self, network):
        return self._true(network) * self.drift()

    def prepared(self, network):
        self.prepared_networks.append(network)
        return network

    def compare(self, trial, network):
        drift = self.drift()
        return Comparison(self._true(trial) * drift, self._true(network) * drift,
                          self._true(trial) / self._true(network))

    def savings(self, groups):
        return {g.name: 0.01 * (i + 1) for i, g in enumerate(groups)}


@pytest.mark.parametrize("metric, kind", [("params", ParamsTarget), ("gflops", GflopsTarget)])
def test_counted_targets_keep_every_cut_and_count_exactly(metric, kind):
    pruner = _pruner(metric)
    target = make_target(pruner)
    assert isinstance(target, kind) and target.counted and target.name == metric
    assert target.check({"any": [0]}, 1.0) == Verdict(keep=True)
    assert target.stuck(exhausted=False, removed={}) and not target.stuck(exhausted=False, removed={"g": 1})
    if metric == "params":
        assert target.costs() == {g.name: channel_costs(g) for g in pruner.groups}
        assert target.measure(pruner.network) == sum(p.numel() for p in pruner.network.parameters())
    floors = {g.name: 1 for g in pruner.groups}
    assert target.round_floors(floors) == floors


def test_the_latency_target_needs_a_latency_model():
    with pytest.raises(PruningError, match="the latency target needs a LatencyModel"):
        _pruner("latency")


def test_latency_keeps_only_faster_cuts_and_gives_up_after_three():
    slower = _pruner("latency", latency=FakeLatency(lambda params: 2.0 - params * 1e-9))  # narrower is slower
    target = slower.target
    assert isinstance(target, LatencyTarget) and not target.counted
    target.begin_step()
    group = slower.groups[0]
    verdicts = [target.check({group.name: [0]}, 1.0) for _ in range(3)]
    assert [v.keep for v in verdicts] == [False] * 3 and [v.stop for v in verdicts] == [False, False, True]
    assert not target.stuck(exhausted=False, removed={}) and target.stuck(exhausted=True, removed={})

    faster = _pruner("latency", latency=FakeLatency(lambda params: params / 1e5))
    target = faster.target
    target.begin_step()
    current = target.measure(faster.network)
    verdict = target.check({group.name: [0, 1]}, current)
    assert verdict.keep and verdict.after < current
    assert 0.5 <= target.correction <= 2.0 and target.correction != 1.0  # learned from the measurement
    floors = target.round_floors({g.name: 1 for g in faster.groups})  # at most a quarter of a group per round
    assert all(floors[g.name] == max(1, g.width - max(1, g.width // 4)) for g in faster.groups)


def test_a_cut_is_judged_against_the_network_timed_in_the_same_rounds():
    """Not against ``current``, an earlier figure: one kept because it measured faster is likely to have measured
    low (here: 100x too low), and no honest cut would beat it. The network is prepared for timing once per kept
    cut: a rejected trial does not prepare it again, a kept one becomes it."""
    latency = FakeLatency(lambda params: params / 1e5)
    pruner = _pruner("latency", latency=latency)
    target = pruner.target
    target.begin_step()
    group = pruner.groups[0]
    lucky = target.measure(pruner.network) / 100
    verdict = target.check({group.name: [0]}, lucky)
    assert verdict.keep and verdict.after < target.measure(pruner.network)
    assert latency.prepared_networks[1] is pruner.network and len(latency.prepared_networks) == 2
    slower = FakeLatency(lambda params: 2.0 - params * 1e-9)
    pruner = _pruner("latency", latency=slower)
    pruner.target.begin_step()
    for _ in range(2):
        assert not pruner.target.check({group.name: [0]}, 10.0).keep  # a late figure does not make it faster
    assert sum(n is pruner.network for n in slower.prepared_networks) == 1


def test_a_step_that_ends_short_is_caught_up_by_the_next():
    """A measured step can end short of its goal (three trials in a row not faster); the next one aims at the
    schedule's plan for it, so that the steps still end where planned and the recovery epochs stay."""
    pruner = _pruner("latency", latency=FakeLatency(lambda params: params / 1e5), keep_fraction=0.2,
                     step_fraction=0.3)
    original = pruner.original["latency"]
    assert pruner.step_goal(original) == pytest.approx(0.7 * original)
    pruner.steps = 1
    assert pruner.step_goal(0.9 * original) == pytest.approx(0.4 * original)  # behind: the plan (0.6 from 0.9)
    assert pruner.step_goal(0.65 * original) == pytest.approx(0.35 * original)  # ahead: a whole step
    pruner.steps = 2
    assert pruner.step_goal(0.5 * original) == pytest.approx(0.2 * original)  # never below the target
    pruner.steps = 5
    assert pruner.step_goal(0.3 * original) == pytest.approx(0.2 * original)


@pytest.mark.parametrize("seed", range(5))
def test_on_a_drifting_machine_a_latency_run_ends_where_planned(seed):
    """The demo's schedule (keep 20%, steps of 30%: planned 70, 40, 20%) on a machine whose speed drifts by
    +-15% from one timing to the next: the target is reached in the third step, as planned (it took five on
    the demo's CPU before cuts were compared in the same rounds and short steps were caught up)."""
    rng = random.Random(seed)
    latency = FakeLatency(lambda params: params / 1e5, drift=lambda: rng.uniform(0.85, 1.15))
    latency.savings = lambda groups: {g.name: channel_costs(g) / 1e5 for g in groups}  # the table is right
    latency.table = SimpleNamespace(base_seconds=latency.measure(tiny_net("plain", 2, 4)))  # as timed once
    pruner = _pruner("latency", latency=latency, keep_fraction=0.2, step_fraction=0.3, warmup_epochs=1,
                     every_epochs=1)
    for epoch in range(5):
        pruner.maybe_step(epoch)
    assert pruner.target_reached and pruner.steps == 3
