"""When and how much to prune, fitted to nnU-Net's epochs.

Warm-up epochs first; then, after every ``every_epochs`` epochs, one pruning step removes channels until
the network has shrunk by ``step_fraction`` of its original size (parameters or GFLOPs), never below the
target; once the target is reached the remaining epochs recover under nnU-Net's poly LR.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.strategies import METHODS, get_strategy

__all__ = ["METRICS", "SCORES", "METHODS", "REFERENCE_EPOCHS", "PRUNING_END_SHARE", "PruningSchedule"]

METRICS = ("params", "gflops", "latency")
SCORES = ("signed_sum", "abs_per_batch")
#: the epoch count the default schedules are written for (nnU-Net's 1000 epochs)
REFERENCE_EPOCHS = 1000
#: the default schedule's last pruning step runs after 20% of training (epoch 200 of 1000 at keep 20%)
PRUNING_END_SHARE = 0.2


@dataclass(frozen=True)
class PruningSchedule:
    """Args:
        method: the name of a pruning strategy, one of :data:`METHODS` (see
            :mod:`nnunet_pruning.core.strategies`).
        target_metric: ``params``, ``gflops`` (GFLOPs at the patch size) or ``latency`` (measured seconds of one
            batch-1 forward pass at the patch size, see :mod:`nnunet_pruning.core.latency`).
        keep_fraction: stop once the network keeps at most this fraction of the original metric
            (0.2 = "80% removed", the thesis's figure).
        warmup_epochs: epochs trained before the first pruning step.
        every_epochs: epochs between pruning steps (recovery time).
        step_fraction: each step removes this fraction of the *original* metric.
        min_width: no group shrinks below this many channels.
        min_width_full_resolution: no group at full resolution (level 0) shrinks below this many channels
            (0: only ``min_width``). On a CPU, convolutions with few channels at large sizes take a slow path.
        score: ``abs_per_batch`` (Molchanov et al. 2017: the absolute value of every batch's term, summed;
            the default, chosen from the benchmark: docs/methods.md "Ablations") or ``signed_sum`` (the STAMP
            reference code: per-batch Taylor terms summed with their sign, the absolute value taken at the
            pruning step, so terms of opposite sign cancel).
        score_after_target: keep scoring and targeted dropout on after the target is reached (the
            behaviour before nnunet_pruning 0.1's fix; for ablations).
        latency_device: where the latency target is measured: ``""`` (the training device), ``cpu`` or ``cuda``.
        latency_threads: CPU threads for latency timing (0: the training process's setting).
    """

    method: str = "taylor"
    target_metric: str = "params"
    keep_fraction: float = 0.2
    warmup_epochs: int = 50
    every_epochs: int = 10
    step_fraction: float = 0.05
    min_width: int = 1
    min_width_full_resolution: int = 0
    score: str = "abs_per_batch"
    score_after_target: bool = False
    latency_device: str = ""
    latency_threads: int = 0

    def validate(self) -> None:
        get_strategy(self.method)  # a one-line error for an unknown method
        if self.target_metric not in METRICS:
            raise PruningError(f"unknown target metric {self.target_metric!r}; use params, gflops or latency")
        if not 0 < self.keep_fraction < 1:
            raise PruningError(f"target keep_fraction {self.keep_fraction} is outside (0, 1); e.g. 0.2 keeps 20% "
                               f"of the {self.target_metric}")
        if not 0 < self.step_fraction < 1:
            raise PruningError(f"step_fraction {self.step_fraction} is outside (0, 1); e.g. 0.05 removes 5% of "
                               f"the original {self.target_metric} per step")
        if self.warmup_epochs < 0 or self.every_epochs < 1:
            raise PruningError("warmup_epochs must be >= 0 and every_epochs >= 1")
        if self.min_width < 1:
            raise PruningError(f"min_width must be >= 1, not {self.min_width}")
        if self.min_width_full_resolution < 0:
            raise PruningError(f"min_width_full_resolution must be >= 0, not {self.min_width_full_resolution}")
        if self.latency_device not in ("", "cpu", "cuda") or self.latency_threads < 0:
            raise PruningError(f"latency_device must be '', cpu or cuda and latency_threads >= 0 (got "
                               f"{self.latency_device!r}, {self.latency_threads})")
        if self.score not in SCORES:
            raise PruningError(f"unknown score {self.score!r}; use one of {', '.join(SCORES)}")

    def min_width_of(self, level: int) -> int:
        """The narrowest a group at resolution ``level`` (0 = full resolution) may become."""
        return max(self.min_width, self.min_width_full_resolution if level == 0 else 0)

    def is_pruning_epoch(self, epoch: int) -> bool:
        """Whether a pruning step follows epoch ``epoch`` (0-based, counted as nnU-Net does)."""
        done = epoch + 1
        return done >= self.warmup_epochs and (done - self.warmup_epochs) % self.every_epochs == 0

    def steps_needed(self) -> int:
        from math import ceil

        return ceil(round((1 - self.keep_fraction) / self.step_fraction, 9))

    def last_pruning_epoch(self) -> int:
        """The epoch after which the last step needed runs (if every step meets its goal)."""
        first_done = self.warmup_epochs if self.warmup_epochs >= 1 else self.every_epochs
        return first_done + (self.steps_needed() - 1) * self.every_epochs - 1

    def fitted(self, epochs: int, keep_fraction: float | None = None, warmup_epochs: int | None = None,
               min_width: int | None = None) -> "PruningSchedule":
        """This schedule for a training of ``epochs`` epochs, so that it reaches its target within it.

        Warm-up and the interval between steps take the same share of training as in the
        :data:`REFERENCE_EPOCHS`-epoch default, and the steps end by :data:`PRUNING_END_SHARE` of training
        (but at the earliest after the first step); a step then removes at least ``step_fraction``, more
        when fewer steps fit. At 1000 epochs and keep 20% this is the default schedule exactly.

        Args:
            epochs: nnU-Net's ``num_epochs`` of the run.
            keep_fraction: a new target (default: this schedule's).
            warmup_epochs: a warm-up in epochs instead of the scaled one.
            min_width: a new floor on every group's width.

        Example:
            >>> PruningSchedule().fitted(250).as_dict()["every_epochs"]
            2
        """
        if epochs < 1:
            raise PruningError(f"a training needs at least 1 epoch, not {epochs}")
        keep = self.keep_fraction if keep_fraction is None else keep_fraction
        scale = epochs / REFERENCE_EPOCHS
        warmup = round(self.warmup_epochs * scale) if warmup_epochs is None else warmup_epochs
        every = max(1, round(self.every_epochs * scale))
        first_done = warmup if warmup >= 1 else every
        if first_done > epochs:
            raise PruningError(f"warm-up of {warmup} epochs leaves no epoch to prune in a training of {epochs} epochs; "
                               f"shorten the warm-up or train longer")
        end_done = min(epochs, max(first_done, round(PRUNING_END_SHARE * epochs)))
        steps = (end_done - first_done) // every + 1
        step = max(self.step_fraction, (1 - keep) / steps)
        fitted = replace(self, keep_fraction=keep, warmup_epochs=warmup, every_epochs=every, step_fraction=step,
                         min_width=self.min_width if min_width is None else min_width)
        fitted.validate()
        return fitted

    def as_dict(self) -> dict:
        return asdict(self)
