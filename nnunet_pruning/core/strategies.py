"""Pruning methods as small strategy objects: which channels a pruning step removes.

Each method is one class with one interface, :meth:`PruningStrategy.select`; the
:class:`~nnunet_pruning.core.pruner.Pruner` looks its strategy up by the schedule's ``method`` name in
:data:`STRATEGIES` and never switches on the name itself. A new method is one new class registered here.
"""

from __future__ import annotations

import random
from typing import Sequence

import torch

from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.groups import ChannelGroup

__all__ = ["Selection", "PruningStrategy", "TaylorStrategy", "TaylorFlopsStrategy", "RandomLargestStrategy",
           "TaylorLayerRandomStrategy", "STRATEGIES", "METHODS", "get_strategy"]


class Selection:
    """The channels chosen so far in one selection, and the estimated saving they bring.

    Args:
        groups: the network's channel groups (their current widths).
        costs: estimated saving per channel of each group (parameters or GFLOPs).
        min_width: no group may be left narrower than this; one value, or one per group name.
        whole: a group loses every channel down to its ``min_width`` or none (the latency target: time falls in
            steps, and a cut that stops between them saves nothing).
    """

    def __init__(self, groups: Sequence[ChannelGroup], costs: dict[str, float], min_width: int | dict[str, int],
                 whole: bool = False):
        self.groups = list(groups)
        self.whole = whole
        self.widths = {g.name: g.width for g in groups}
        self.costs = costs
        self.min_width = min_width if isinstance(min_width, dict) else {g.name: min_width for g in groups}
        self.chosen: dict[str, set[int]] = {g.name: set() for g in groups}
        self.saved = 0.0

    def remaining(self, name: str) -> int:
        return self.widths[name] - len(self.chosen[name])

    def room(self, name: str) -> bool:
        """Whether one more channel of group ``name`` may go without passing ``min_width`` and saves something
        (a group whose measured time does not drop when it narrows has cost 0 and keeps its channels)."""
        return (self.remaining(name) > self.min_width[name] and self.costs[name] > 0
                and not (self.whole and self.chosen[name]))

    def block_left(self, name: str) -> int:
        """Channels group ``name`` must still lose to complete its cut (``whole``: down to its ``min_width``)."""
        return self.remaining(name) - self.min_width[name] if self.whole and self.chosen[name] else 0

    def free_channels(self, name: str) -> list[int]:
        return [c for c in range(self.widths[name]) if c not in self.chosen[name]]

    def take(self, name: str, channel: int) -> None:
        self.chosen[name].add(channel)
        self.saved += self.costs[name]

    def result(self) -> dict[str, list[int]]:
        return {name: sorted(channels) for name, channels in self.chosen.items() if channels}


class PruningStrategy:
    """One pruning method. Subclasses set :attr:`name` and implement :meth:`select`.

    Attributes:
        name: the ``method`` of a :class:`~nnunet_pruning.core.schedule.PruningSchedule`.
        uses_scores: whether the method needs Taylor scores (and therefore STAMP's targeted dropout).
        flops_weighted: whether scores are divided by each channel's relative FLOPs cost.
    """

    name: str = ""
    uses_scores: bool = True
    flops_weighted: bool = False

    def select(self, selection: Selection, need: float, rng: random.Random,
               normalised: dict[str, torch.Tensor] | None, weights: dict[str, float] | None) -> None:
        """Add channels to ``selection`` until its estimated saving reaches ``need`` (or nothing can go)."""
        raise NotImplementedError


def _ranked(groups: Sequence[ChannelGroup], normalised: dict[str, torch.Tensor],
            weights: dict[str, float] | None) -> list[tuple[float, int, int]]:
    """``(importance, group index, channel)`` ascending; ties broken by group then channel order."""
    entries = []
    for gi, group in enumerate(groups):
        score = normalised[group.name]
        weight = weights[group.name] if weights else 1.0
        if weight <= 0:  # removing from this group saves nothing
            continue
        entries += [(float(s) / weight, gi, c) for c, s in enumerate(score.tolist())]
    entries.sort()
    return entries


class TaylorStrategy(PruningStrategy):
    """STAMP: the channels with the lowest normalised Taylor score go first, across all groups (each score
    divided by its group's relative cost per channel when the pruner passes weights: FLOPs-weighted methods,
    and the latency target's measured time saved per channel)."""

    name = "taylor"

    def pick(self, selection: Selection, name: str, channel: int, rng: random.Random) -> int:
        """The channel of group ``name`` to remove when the ranking points at ``channel``."""
        return channel

    def select(self, selection, need, rng, normalised, weights):
        if normalised is None:
            raise PruningError(f"pruning method {self.name} needs Taylor scores; attach the pruner's scorer "
                               f"(Pruner.attach) and train before a step")
        ranked = _ranked(selection.groups, normalised, weights)
        in_group: dict[int, list[int]] = {}  # each group's channels in the order of the ranking
        for _, gi, channel in ranked:
            in_group.setdefault(gi, []).append(channel)
        for _, gi, channel in ranked:
            if selection.saved >= need:
                break
            name = selection.groups[gi].name
            if not selection.room(name) or channel in selection.chosen[name]:
                continue
            selection.take(name, self.pick(selection, name, channel, rng))
            while selection.block_left(name):  # the group's next channels in the ranking complete its cut
                following = next(c for c in in_group[gi] if c not in selection.chosen[name])
                selection.take(name, self.pick(selection, name, following, rng))


class TaylorFlopsStrategy(TaylorStrategy):
    """STAMP with each score divided by its channel's relative FLOPs cost: expensive channels go first."""

    name = "taylor_flops"
    flops_weighted = True


class TaylorLayerRandomStrategy(TaylorStrategy):
    """STAMP chooses the group (of the lowest-ranked channel); the channel in it is random."""

    name = "taylor_layer_random"

    def pick(self, selection, name, channel, rng):
        return rng.choice(selection.free_channels(name))


class RandomLargestStrategy(PruningStrategy):
    """A random channel of the currently widest group (ties at random), until the saving is reached."""

    name = "random_largest"
    uses_scores = False

    def select(self, selection, need, rng, normalised, weights):
        while selection.saved < need:
            candidates = [g.name for g in selection.groups if selection.room(g.name)]
            if not candidates:
                break
            widest = max(selection.remaining(n) for n in candidates)
            name = rng.choice([n for n in candidates if selection.remaining(n) == widest])
            selection.take(name, rng.choice(selection.free_channels(name)))
            while selection.block_left(name):
                selection.take(name, rng.choice(selection.free_channels(name)))


#: every pruning method by name
STRATEGIES: dict[str, PruningStrategy] = {s.name: s for s in (TaylorStrategy(), TaylorFlopsStrategy(),
                                                               RandomLargestStrategy(), TaylorLayerRandomStrategy())}
METHODS = tuple(STRATEGIES)


def get_strategy(method: str) -> PruningStrategy:
    """The strategy of ``method``, with a one-line error that lists the methods."""
    try:
        return STRATEGIES[method]
    except KeyError:
        raise PruningError(f"unknown pruning method {method!r}; use one of {', '.join(METHODS)}") from None
