"""Pruning targets as strategies: the counted ones keep every cut, the measured one (latency) keeps only a cut
that is measured faster, gives up after three that are not, and learns from what it measured."""

import pytest
import torch

from nnunet_pruning.core.errors import PruningError
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
    """A latency model whose measurement is a function of the network's parameter count."""

    class table:
        base_seconds = 1.0

    def __init__(self, seconds):
        self.seconds = seconds

    def measure(self, network):
        return self.seconds(sum(p.numel() for p in network.parameters()))

    def savings(self, groups):
        return {g.name: 0.01 * (i + 1) for i, g in enumerate(groups)}

    def narrowing(self, groups):  # no width where narrowing pays more: a round takes at most a quarter
        return {g.name: (g.width, 0.01 * (i + 1)) for i, g in enumerate(groups)}


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
