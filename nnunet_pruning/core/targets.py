"""Pruning targets as strategies: what a step shrinks (parameters, GFLOPs at the patch size, or the measured
forward time) and how it knows a cut is good, so that :class:`~nnunet_pruning.core.pruner.Pruner` has one
step loop for all of them.

A counted target (``params``, ``gflops``) knows the saving of every channel exactly: a selection is applied
and the network counted. The ``latency`` target only estimates it (the width -> time table,
:mod:`nnunet_pruning.core.latency`): a selection is measured on a copy first and kept only if the network
gets faster; a group loses every channel down to the next width the table says is faster, or none (time falls
in steps); the estimates are corrected by what was measured; a cut far past the step's goal is refused and the
next round scaled down; the groups of a cut measured no faster are set aside for the rest of the step.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from torch import nn

from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.groups import find_groups
from nnunet_pruning.core.importance import channel_costs
from nnunet_pruning.core.measure import count_gflops, count_params
from nnunet_pruning.core.surgery import remove_channels

__all__ = ["Verdict", "PruningTarget", "ParamsTarget", "GflopsTarget", "LatencyTarget", "make_target"]


@dataclass(frozen=True)
class Verdict:
    """What a target says about a selection: keep it (``after``: the metric once cut, if it was measured), or try
    another: ``overshot``, refused because it cut far past the goal (``after``: what it measured), the next round
    goes for the need scaled by what was asked / what it saved; else the next round goes for the same need with
    the refused cut's groups set aside (:class:`LatencyTarget`)."""

    keep: bool
    after: float | None = None
    overshot: bool = False


class PruningTarget:
    """The metric a schedule prunes to; one instance per :class:`~nnunet_pruning.core.pruner.Pruner`."""

    name = ""
    #: whether the metric is counted (exact, monotonic in the widths) rather than measured
    counted = True
    #: whether a round cuts each group it chooses down to its round floor (:meth:`round_floors`) or not at all
    whole_cuts = False

    def __init__(self, pruner):
        self.pruner = pruner

    def measure(self, network: nn.Module) -> float:
        raise NotImplementedError

    def costs(self) -> dict[str, float]:
        """Estimated saving per channel of each group, in the metric's unit."""
        raise NotImplementedError

    def weights(self) -> dict[str, float] | None:
        """Relative cost per channel that scores are divided by (the costliest group = 1), or None."""
        p = self.pruner
        if not p.strategy.flops_weighted:
            return None
        return _relative({g.name: channel_costs(g, p.voxels()) for g in p.groups})

    def begin_step(self) -> None:
        """A step starts (targets that learn within a step reset here)."""
        self._weights = self.weights()

    def round_weights(self) -> dict[str, float] | None:
        """The weights of this round of a step (counted targets: those of the step's start)."""
        return self._weights

    def round_floors(self, floors: dict[str, int]) -> dict[str, int]:
        """The narrowest each group may become in this round."""
        return floors

    def check(self, selection: dict[str, list[int]], current: float, goal: float) -> Verdict:
        """Whether to cut ``selection`` from the network whose metric is ``current`` (the step goes for ``goal``)."""
        return Verdict(keep=True)

    def stuck(self, exhausted: bool, removed: dict[str, int]) -> bool:
        """Whether the step ended because nothing more can go (the run then stops short of its target)."""
        return not removed

    def nothing_left(self, removed: dict[str, int]) -> bool:
        """A round selected nothing: whether that means nothing can go at all (else a later step tries again)."""
        return True


class ParamsTarget(PruningTarget):
    name = "params"

    def measure(self, network: nn.Module) -> float:
        return float(count_params(network))

    def costs(self) -> dict[str, float]:
        return {g.name: channel_costs(g) for g in self.pruner.groups}


class GflopsTarget(PruningTarget):
    name = "gflops"

    def measure(self, network: nn.Module) -> float:
        shape = self.pruner.input_shape
        return count_gflops(network, shape[0], shape[1:])

    def costs(self) -> dict[str, float]:
        p = self.pruner
        return {g.name: channel_costs(g, p.voxels()) / 1e9 for g in p.groups}


class LatencyTarget(PruningTarget):
    """The measured forward time (seconds), through the pruner's :class:`~nnunet_pruning.core.latency.LatencyModel`."""

    name = "latency"
    counted = False
    #: time falls in steps (oneDNN blocks channels by 8 or 16): a cut that stops between two saves nothing, so a
    #: group goes down to the width its narrowing aims at (:meth:`~nnunet_pruning.core.latency.LatencyTable.narrowing`)
    #: or keeps its channels. Without it, on a 2-core CPU, STAMPLatency's first step cut the full-resolution groups
    #: 32 -> 26-29 (no faster) three times and the run ended unpruned (98.8% of the time for a 50% target).
    whole_cuts = True
    #: a cut measured below the step's goal by more than half the round's need, and by more than this share of the
    #: unpruned time, cut past what was asked (the table underestimated its saving): it is refused, at most
    #: MAX_OVERSHOT times a step (then kept: it is faster), and the next round goes for a need scaled by asked /
    #: saved (a secant step; the correction is not learnt from it). On a 2-core CPU one round of the demo's
    #: STAMPLatency at 50% took 408 channels for an 11% need and measured 28% (33% of the time left, 45% of the
    #: parameters): the global correction had been learnt on other groups.
    OVERSHOOT = 0.05
    MAX_OVERSHOT = 2

    def __init__(self, pruner):
        super().__init__(pruner)
        if pruner.latency is None:
            raise PruningError("the latency target needs a LatencyModel (a measured width -> time table); "
                               "pass latency=LatencyModel(build_latency_table(...), ...)")
        self.correction = 1.0  # measured / estimated savings so far: the table's slopes assume other groups full
        self.overshot = 0
        self.set_aside: set[str] = set()  # groups whose cut measured no faster in this step

    def measure(self, network: nn.Module) -> float:
        return self.pruner.latency.measure(network)

    def costs(self) -> dict[str, float]:
        return {name: value * self.correction for name, value in self._savings().items()}

    def weights(self) -> dict[str, float] | None:
        return _relative(self._savings())  # time saved per unit of lost importance

    def _savings(self) -> dict[str, float]:
        savings = self.pruner.latency.savings(self.pruner.groups)
        return {name: 0.0 if name in self.set_aside else value for name, value in savings.items()}

    def begin_step(self) -> None:
        self.overshot = 0
        self.set_aside = set()

    def round_weights(self) -> dict[str, float] | None:
        return self.weights()  # each group's saving per channel depends on its current width

    def round_floors(self, floors: dict[str, int]) -> dict[str, int]:
        # the next width the table says is faster (time falls in steps: 32 -> 24 channels may save nothing, 16
        # much; where it falls evenly, a quarter of the group): a round cuts a group there or not at all
        aims = self.pruner.latency.narrowing(self.pruner.groups)
        return {g.name: min(g.width, max(floors[g.name], aims[g.name][0])) for g in self.pruner.groups}

    def check(self, selection: dict[str, list[int]], current: float, goal: float) -> Verdict:
        """Measure the cut on a copy first: keep it only if the network gets faster, and not far past ``goal``
        (:data:`OVERSHOOT`)."""
        after = self.measure(_cut_copy(self.pruner, selection))
        if after >= current:
            # the method would choose the same groups again: random-largest took the widest, on a 2-core CPU the deep
            # ones, whose cut saves a trace; they were measured no faster three times and ended the step at 56-60% of
            # the time for a 50% target. The step goes on with the other groups.
            self.set_aside.update(selection)
            return Verdict(keep=False)
        slack = max(0.5 * (current - goal), self.OVERSHOOT * self.pruner.original["latency"])
        if goal - after > slack and self.overshot < self.MAX_OVERSHOT:
            self.overshot += 1  # the pruner scales the round's need by what was asked / what this cut saved
            return Verdict(keep=False, after=after, overshot=True)
        costs = self.costs()
        estimated = sum(costs[name] * len(channels) for name, channels in selection.items())
        if estimated > 0:
            self.correction = min(2.0, max(0.5, self.correction * (current - after) / estimated))
        return Verdict(keep=True, after=after)

    def stuck(self, exhausted: bool, removed: dict[str, int]) -> bool:
        # a step may end without a gain (noise, or narrower is not faster); it is over only when nothing can go
        return exhausted

    def nothing_left(self, removed: dict[str, int]) -> bool:
        # every group left was set aside in a step that kept a cut: the next step tries them again (one demo run of
        # RandomLargestLatency ended at 61.5% in its second step of three, the third never tried)
        return not (removed and self.set_aside)


TARGETS = {"params": ParamsTarget, "gflops": GflopsTarget, "latency": LatencyTarget}


def make_target(pruner) -> PruningTarget:
    """The target object of the pruner's schedule (``target_metric``)."""
    return TARGETS[pruner.schedule.target_metric](pruner)


def _relative(costs: dict[str, float]) -> dict[str, float]:
    top = max(costs.values())
    return {name: (value / top if top > 0 else 0.0) for name, value in costs.items()}


def _cut_copy(pruner, selection: dict[str, list[int]]) -> nn.Module:
    """A copy of the pruner's network with ``selection`` removed (the network itself is not changed)."""
    trial = copy.deepcopy(pruner.network)
    for group, copied in zip(pruner.groups, find_groups(trial)):
        if selection.get(group.name):
            remove_channels(trial, copied, selection[group.name])
    return trial
