"""One pruning run on one network: scores, channel selection, steps, state for checkpoints (pure torch).

The trainers call :meth:`Pruner.attach` when training starts, :meth:`Pruner.maybe_step` at every epoch
end, and save :meth:`Pruner.state_dict` in their checkpoints.
"""

from __future__ import annotations

import copy
import random
import time
from typing import Sequence

import torch
from torch import nn

from nnunet_pruning.core.dropout import TargetedDropout
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.groups import ChannelGroup, find_groups, is_transposed
from nnunet_pruning.core.importance import TaylorScorer, conv_voxels, normalise
from nnunet_pruning.core.latency import LatencyModel
from nnunet_pruning.core.measure import count_gflops, count_params
from nnunet_pruning.core.schedule import PruningSchedule
from nnunet_pruning.core.strategies import Selection, get_strategy
from nnunet_pruning.core.targets import make_target
from nnunet_pruning.core.surgery import remove_channels

__all__ = ["Pruner", "select_channels", "OUTCOMES", "outcome_text", "full_resolution_floor"]

#: how a pruning run ended (``None`` while it still prunes): the target, or why it stopped short of it
OUTCOMES = {"reached": "target reached",
            "nothing_left_to_cut": "stopped short: nothing left to cut that measured faster or could go",
            "minimum_widths": "stopped short: every layer at its minimum width",
            "out_of_epochs": "stopped short: out of epochs"}


def outcome_text(outcome: str | None, full_resolution_floor: int = 0) -> str:
    """The words for an outcome of :data:`OUTCOMES` (``None``: still pruning); a run that stopped short with a
    ``full_resolution_floor`` (``min_width_full_resolution`` above ``min_width``) names it: the floor may be what
    held the rest of the target (a latency target: the full-resolution layers hold most of the time)."""
    words = OUTCOMES.get(outcome, "still pruning") if outcome else "still pruning"
    if full_resolution_floor and outcome in ("nothing_left_to_cut", "minimum_widths"):
        words += f" (full-resolution layers held at >= {full_resolution_floor} channels)"
    return words


def full_resolution_floor(schedule) -> int:
    """``min_width_full_resolution`` where it is above ``min_width``, else 0 (a schedule or its ``as_dict``)."""
    get = schedule.get if isinstance(schedule, dict) else lambda key, default: getattr(schedule, key, default)
    floor = get("min_width_full_resolution", 0) or 0
    return floor if floor > (get("min_width", 1) or 1) else 0


def select_channels(groups: Sequence[ChannelGroup], method: str, need: float, costs: dict[str, float],
                    min_width: int | dict[str, int], rng: random.Random,
                    normalised: dict[str, torch.Tensor] | None = None,
                    weights: dict[str, float] | None = None, whole: bool = False) -> dict[str, list[int]]:
    """Channels to remove (per group name) so that the estimated saving reaches ``need``.

    Args:
        method: the name of a :mod:`~nnunet_pruning.core.strategies` strategy (``taylor``, ``taylor_flops``,
            ``random_largest``, ``taylor_layer_random``).
        costs: estimated saving per channel of each group (parameters or FLOPs).
        normalised: normalised Taylor scores per group (methods that use scores).
        weights: relative cost per channel of each group (FLOPs, or measured time); scores are divided by it.
        whole: each group chosen loses every channel down to its ``min_width`` (:class:`Selection`).

    Returns:
        ``{group name: sorted channel indices}`` for the groups that lose channels.
    """
    selection = Selection(groups, costs, min_width, whole)
    get_strategy(method).select(selection, need, rng, normalised, weights)
    return selection.result()


class Pruner:
    """Prunes ``network`` in steps according to ``schedule``.

    Args:
        network: a PlainConvUNet or ResidualEncoderUNet (resizable or not).
        schedule: what, when and how much.
        input_shape: ``(channels, *patch_size)``, for GFLOPs and FLOPs costs.
        seed: seeds the random choices (the trainers use the fold).
        sync: a :class:`~nnunet_pruning.core.distributed.RankSync` under multi-GPU training: scores are averaged
            over ranks, rank 0's random state is used, and ranks that disagree stop with an error.
        latency: a :class:`~nnunet_pruning.core.latency.LatencyModel` (table + timing), needed by the ``latency``
            target: its measured time is then reported beside params and GFLOPs.
    """

    def __init__(self, network: nn.Module, schedule: PruningSchedule, input_shape: Sequence[int], seed: int = 0,
                 sync=None, latency: LatencyModel | None = None):
        schedule.validate()
        self.latency = latency
        self.sync = sync
        self.network = network
        self.schedule = schedule
        self.input_shape = tuple(int(s) for s in input_shape)
        self.groups = find_groups(network)
        self.rng = random.Random(seed)
        self.strategy = get_strategy(schedule.method)
        self.uses_scores = self.strategy.uses_scores
        self.scorer = TaylorScorer(self.groups, absolute_per_batch=schedule.score == "abs_per_batch") \
            if self.uses_scores else None
        self.dropout = TargetedDropout(self.groups) if self.uses_scores else None
        self.target = make_target(self)  # what a step shrinks, and how it judges a cut (core/targets.py)
        self.original = self.measure(original=True)
        self.steps = 0
        self.outcome: str | None = None  # a key of OUTCOMES once no more steps follow
        self.log: list[dict] = []
        self._voxels = None
        if sync is not None:
            sync.broadcast_rng(self.rng)

    @property
    def finished(self) -> bool:
        """No more steps follow: the target is reached, or the run stopped short of it (:attr:`outcome`)."""
        return self.outcome is not None

    @property
    def target_reached(self) -> bool:
        return self.outcome == "reached"

    def end(self) -> None:
        """Training is over: a run still pruning stopped short of its target, out of epochs."""
        if self.outcome is None:
            self.outcome = "out_of_epochs"

    # -- measurements -------------------------------------------------------------------------------------
    def measure(self, original: bool = False) -> dict:
        """Params, GFLOPs and (with a latency model) measured seconds per forward pass of the network now.

        ``original``: the unpruned network's latency is the table's base time (no second timing).
        """
        values = {"params": count_params(self.network),
                  "gflops": count_gflops(self.network, self.input_shape[0], self.input_shape[1:])}
        if self.latency is not None:
            values["latency"] = self.latency.table.base_seconds if original else self.latency.measure(self.network)
        return values

    @property
    def target_value(self) -> float:
        return self.schedule.keep_fraction * self.original[self.schedule.target_metric]

    def voxels(self) -> dict:
        if self._voxels is None:
            self._voxels = conv_voxels(self.network, self.input_shape)
        return self._voxels

    def kept_at_floors(self) -> float:
        """The share of the target metric the network keeps with every group at its floor (``min_width``, at full
        resolution ``min_width_full_resolution``): counted, or for latency one measurement of such a copy."""
        smallest = copy.deepcopy(self.network)
        for group in find_groups(smallest):
            floor = self.schedule.min_width_of(group.level)
            if group.width > floor:
                remove_channels(smallest, group, range(group.width - floor))
        return self.target.measure(smallest) / self.original[self.schedule.target_metric]

    def _floors_text(self) -> tuple[str, bool]:
        full = full_resolution_floor(self.schedule)
        return (f"min_width={self.schedule.min_width}" + (
            f" (min_width_full_resolution={full} at full resolution)" if full else ""), bool(full))

    def check_reachable(self) -> None:
        """A one-line error when even every group at ``min_width`` keeps more than the target.

        Not for latency: time is not monotonic in the widths (a narrower layer can be slower), so a latency
        target that cannot be met ends as "target missed" in the log, count and compare (:meth:`floor_warning`
        says so before training).
        """
        if not self.target.counted:
            return
        kept = self.kept_at_floors()
        s = self.schedule
        if kept > s.keep_fraction * (1 + 1e-9):
            floors, full = self._floors_text()
            raise PruningError(
                f"target unreachable: keeping {s.keep_fraction:.0%} of the {s.target_metric} needs widths below "
                f"{floors} (with every group at its floor the network keeps {kept:.1%}); lower "
                f"{'the floors' if full else 'min_width'} or raise keep_fraction")

    def floor_warning(self) -> str | None:
        """For a latency target: a warning when a copy with every group at its floor measures above the target (the
        run will likely stop short); ``None`` when it measures within it, or for a counted target."""
        if self.target.counted:
            return None
        kept = self.kept_at_floors()
        s = self.schedule
        if kept <= s.keep_fraction:
            return None
        floors, full = self._floors_text()
        return (f"WARNING: with every layer at its floor, {floors}, the forward pass measured {kept:.1%} of the "
                f"unpruned time, above the target of {s.keep_fraction:.0%}: the run will likely stop short of it; "
                f"lower {'the floors' if full else 'min_width'} or raise keep_fraction")

    # -- hooks --------------------------------------------------------------------------------------------
    def min_widths(self) -> dict[str, int]:
        """The narrowest each group may become (``min_width``, or the full-resolution floor at level 0)."""
        return {g.name: self.schedule.min_width_of(g.level) for g in self.groups}

    def attach(self) -> None:
        """Start scoring and targeted dropout (nothing once the target is reached: training runs at full speed)."""
        if self.scorer and (not self.finished or self.schedule.score_after_target):
            self.scorer.attach()
            self.dropout.attach()

    def detach(self) -> None:
        if self.scorer:
            self.scorer.detach()
            self.dropout.detach()

    # -- steps --------------------------------------------------------------------------------------------
    def maybe_step(self, epoch: int, optimizer=None, **extra) -> dict | None:
        """Run a pruning step if the schedule says so after ``epoch``; return its log record."""
        if self.finished or not self.schedule.is_pruning_epoch(epoch):
            return None
        return self.step(epoch, optimizer, **extra)

    def step(self, epoch: int, optimizer=None, **extra) -> dict:
        """One pruning step: remove channels until the metric drops by ``step_fraction`` (or the target)."""
        started = time.perf_counter()
        schedule, target = self.schedule, self.target
        current = target.measure(self.network)  # once (a latency measurement is a timing: twice would disagree)
        goal = max(self.target_value, current - schedule.step_fraction * self.original[schedule.target_metric])
        removed: dict[str, int] = {}
        exhausted = False
        if self.sync is not None:
            self.sync.check_widths({g.name: g.width for g in self.groups})
            if self.scorer:
                self.scorer.scores = self.sync.average_scores(self.scorer.scores)
        normalised = normalise(self.scorer.scores) if self.scorer else None
        target.begin_step()
        share = 1.0  # the part of the remaining need a round goes for (scaled down after a cut far past the goal)
        for _ in range(100):  # estimates are per channel; re-select until the measured metric is at the goal
            if current <= goal * (1 + 1e-9):
                break
            selection = select_channels(self.groups, schedule.method, share * (current - goal), target.costs(),
                                        target.round_floors(self.min_widths()), self.rng, normalised,
                                        target.round_weights(), target.whole_cuts)
            if self.sync is not None:
                self.sync.check_selection(selection)
            if not selection:
                exhausted = target.nothing_left(removed)
                break
            verdict = target.check(selection, current, goal)
            if not verdict.keep:
                if verdict.overshot:
                    share *= (current - goal) / (current - verdict.after)
                continue
            for group in self.groups:
                channels = selection.get(group.name)
                if not channels:
                    continue
                kept = remove_channels(self.network, group, channels, optimizer, schedule.min_width_of(group.level))
                removed[group.name] = removed.get(group.name, 0) + len(channels)
                if self.scorer:
                    self.scorer.keep(group.name, kept)
                    normalised[group.name] = normalised[group.name][kept]
            current = verdict.after if verdict.after is not None else target.measure(self.network)
        self.steps += 1
        measured = {"params": count_params(self.network),
                    "gflops": count_gflops(self.network, self.input_shape[0], self.input_shape[1:])}
        if self.latency is not None:
            measured["latency"] = self.latency.measure(self.network) if target.counted else current
        at_minimum = all(g.width <= schedule.min_width_of(g.level) for g in self.groups)
        stuck = target.stuck(exhausted, removed)
        if measured[schedule.target_metric] <= self.target_value * (1 + 1e-9):
            self.outcome = "reached"
        elif at_minimum:
            self.outcome = "minimum_widths"
        elif stuck:
            self.outcome = "nothing_left_to_cut"
        if self.scorer:
            self.dropout.update(normalised)
            self.scorer.reset()
            if self.finished and not self.schedule.score_after_target:  # the rest trains at full speed
                self.detach()
        record = {"step": self.steps, "epoch": epoch, "channels_removed": sum(removed.values()),
                  "groups": removed, "params": measured["params"], "gflops": measured["gflops"],
                  "params_fraction": measured["params"] / self.original["params"],
                  "gflops_fraction": measured["gflops"] / self.original["gflops"],
                  **({"latency": measured["latency"], "latency_fraction": measured["latency"] / self.original["latency"]}
                     if "latency" in measured else {}),
                  "target_reached": self.target_reached,
                  **({"stopped": outcome_text(self.outcome, full_resolution_floor(schedule))}
                     if self.finished and not self.target_reached else {}),
                  "seconds": time.perf_counter() - started, **extra}
        self.log.append(record)
        return record

    # -- checkpoints --------------------------------------------------------------------------------------
    def _scores_from_means(self) -> None:
        """A checkpoint written before each batch's term was a sum holds means over (batch, space): scale them by
        the voxels per sample of the group's activation (what is left, the batch size, weights the batches before
        this resume a little less than those after it; only the ranking within a group matters)."""
        from math import prod

        voxels = self.voxels()
        for group in self.groups:
            conv = group.producers[0].conv  # a transposed conv's voxels are those of its input
            factor = voxels.get(conv, 1) * (prod(conv.stride) if is_transposed(conv) else 1)
            self.scorer.scores[group.name] = self.scorer.scores[group.name] * float(factor)

    def state_dict(self) -> dict:
        return {
            "schedule": self.schedule.as_dict(), "original": dict(self.original), "steps": self.steps,
            "finished": self.finished, "outcome": self.outcome, "log": list(self.log), "rng": self.rng.getstate(),
            "scores": self.scorer.state_dict() if self.scorer else None, "score_unit": "sum",
            "dropout": dict(self.dropout.probabilities) if self.dropout else None,
        }

    def load_state_dict(self, state: dict) -> None:
        self.original = dict(state["original"])
        self.steps = state["steps"]
        self.log = list(state["log"])
        self.outcome = state.get("outcome")
        if self.outcome is None and state["finished"]:  # a checkpoint from before outcomes were kept
            last = self.log[-1] if self.log else {}
            reached = last.get(f"{self.schedule.target_metric}_fraction", 1.0) <= self.schedule.keep_fraction + 1e-9
            self.outcome = "reached" if reached else "nothing_left_to_cut"
        self.rng.setstate(state["rng"])
        if self.sync is not None:
            self.sync.broadcast_rng(self.rng)
        if self.scorer and state.get("scores") is not None:
            self.scorer.load_state_dict(state["scores"])
            if state.get("score_unit") != "sum":
                self._scores_from_means()
        if self.dropout and state.get("dropout") is not None:
            self.dropout.probabilities = dict(state["dropout"])
        if self.finished and not self.schedule.score_after_target:
            self.detach()
