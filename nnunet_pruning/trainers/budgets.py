"""Training budgets: how long a trainer trains, one mechanism for every trainer name.

A budget is nnU-Net's epochs and iterations (plus validation iterations and the checkpoint interval) and how
a pruning schedule is fitted into it. Names carry it (:mod:`nnunet_pruning.trainers.named`): no suffix is
nnU-Net's 1000 x 250, ``_<E>epochs[_<I>iters]`` any other, and two presets have names of their own:
``_demo`` (the demo's CPU budget) and ``_smoke`` (tests). A class made from a name carries its
:class:`Budget` as ``budget``; :class:`BudgetedTrainer` applies it after ``nnUNetTrainer.__init__``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch

from nnunet_pruning.core.schedule import PruningSchedule

__all__ = ["Budget", "DEFAULT_BUDGET", "PRESETS", "budget_of", "BudgetedTrainer"]


@dataclass(frozen=True)
class Budget:
    """Args:
        name: the suffix that names it (``""``: nnU-Net's default; ``demo``; ``250epochs_50iters``).
        epochs, iterations, val_iterations: nnU-Net's ``num_epochs``, ``num_iterations_per_epoch``,
            ``num_val_iterations_per_epoch``.
        save_every: ``checkpoint_latest.pth`` every this many epochs.
        max_batch_size: a cap on the plans' batch size (None: the plans' own).
        pruning: a preset's pruning settings (``PruningSchedule`` fields), or None: the method's schedule
            fitted to ``epochs`` (:meth:`PruningSchedule.fitted`).
        pruning_steps: a preset's steps, each removing an equal share of what the target removes (the step
            fraction is ``(1 - keep) / pruning_steps``: 40% at keep 20%, 25% at keep 50%), unless the method
            changes the step itself (an ablation); None: the preset's ``step_fraction``.
        latency_warmup_epochs: a preset's warm-up for a latency target (``target_metric="latency"``), where it
            differs from ``pruning``'s (None: the same).
        pruning_epochs: epochs of the pruning methods, where they need more room than the others.
        for_tests: the test conveniences of :class:`BudgetedTrainer` (threads, forked export pool).
        summary: one line for ``nnunet-pruning trainers`` and the docs.
    """

    name: str = ""
    epochs: int = 1000
    iterations: int = 250
    val_iterations: int = 50
    save_every: int = 50
    max_batch_size: int | None = None
    pruning: tuple[tuple[str, float], ...] | None = None
    pruning_steps: int | None = None
    latency_warmup_epochs: int | None = None
    pruning_epochs: int | None = None
    for_tests: bool = False
    summary: str = ""

    def epochs_of(self, pruning: bool) -> int:
        return (self.pruning_epochs or self.epochs) if pruning else self.epochs

    def for_method(self, pruning: bool) -> "Budget":
        """This budget as the trainer of a pruning method (True) or not runs it."""
        return replace(self, epochs=self.epochs_of(pruning), pruning_epochs=None)

    def schedule(self, base: PruningSchedule, changes: dict | None = None, keep: float | None = None,
                 warmup: int | None = None, min_width: int | None = None) -> PruningSchedule:
        """The pruning schedule of a method (``base``, and the method's own ``changes`` to it) in this budget,
        with a name's ``keep``/``warmup``/``min_width``."""
        if self.pruning is None:
            return base.fitted(self.epochs, keep, warmup, min_width)
        schedule = replace(replace(base, **dict(self.pruning)), **(changes or {}))
        if self.latency_warmup_epochs is not None and schedule.target_metric == "latency":
            schedule = replace(schedule, warmup_epochs=self.latency_warmup_epochs)
        if keep is not None:
            schedule = replace(schedule, keep_fraction=keep)
        if warmup is not None:
            schedule = replace(schedule, warmup_epochs=warmup)
        if self.pruning_steps and "step_fraction" not in (changes or {}):
            schedule = replace(schedule, step_fraction=(1 - schedule.keep_fraction) / self.pruning_steps)
        if min_width is not None:
            schedule = replace(schedule, min_width=min_width)
        schedule.validate()
        return schedule


DEFAULT_BUDGET = Budget(summary="nnU-Net's default")

#: budgets with names of their own (a name ends ``_smoke`` / ``_demo``). The demo prunes in 2 equal steps, its
#: last after 40% of training (nnU-Net's default schedule: after 20%), as a fitted schedule shares the target out
#: over the steps that fit. Until 2026-11-30 it took steps of 30% (3 to keep 20% of the parameters), which left
#: STAMP 2 epochs of recovery and 3.3 points below 2 x 40% over 15 runs on 3 synthetic datasets; a fixed 40% cut
#: STAMPLatency to 55% of the time after one epoch (docs/results.md; ``nnUNetTrainerSTAMPThreeSteps_demo`` is
#: the old preset for STAMP). A latency target starts a step later, after epochs 1 and 2: cut after one epoch
#: (20 iterations), both latency trainers trailed stock, separated over 15 runs on 3 synthetic datasets
#: (STAMPLatency -11.2 points, 3 runs below 0.6); with one more epoch first neither was (-3.2, -1.0)
#: (docs/results.md; ``_warmup1_demo`` trains the earlier schedule)
PRESETS = {
    "demo": Budget("demo", epochs=5, iterations=20, val_iterations=5,
                   pruning=(("keep_fraction", 0.2), ("warmup_epochs", 1), ("every_epochs", 1)), pruning_steps=2,
                   latency_warmup_epochs=2,
                   summary="the demo's CPU budget (100 SGD steps): 2 pruning steps after epochs 0, 1 (a latency "
                           "target: 1, 2), each removing half of what the target removes, then 3 epochs of recovery "
                           "(2)"),
    "smoke": Budget("smoke", epochs=1, iterations=2, val_iterations=1, save_every=1, max_batch_size=2,
                    pruning=(("keep_fraction", 0.5), ("warmup_epochs", 1), ("every_epochs", 1),
                             ("step_fraction", 0.25)),
                    pruning_epochs=4, for_tests=True,
                    summary="for tests: proves the plumbing, learns nothing; batch <= 2"),
}


def budget_of(epochs: int | None = None, iterations: int | None = None) -> Budget:
    """The budget ``_<E>epochs[_<I>iters]`` names (either part may be left out: nnU-Net's value)."""
    parts = ([f"{epochs}epochs"] if epochs is not None else []) + ([f"{iterations}iters"] if iterations else [])
    iters = iterations or 250
    return Budget("_".join(parts), epochs=epochs or 1000, iterations=iters,
                  val_iterations=50 if iterations is None else max(1, round(iters / 5)))


class BudgetedTrainer:
    """Mixin (first in the bases) that applies the class's :class:`Budget` after ``nnUNetTrainer.__init__``.

    With ``budget.for_tests``: ``OMP_NUM_THREADS`` (when set) limits torch's threads, where ``nnUNetv2_train
    -device cpu`` takes every core; and the final validation's export pool forks instead of spawning: a spawned
    worker imports torch and nnU-Net again (~8 s on a 2-core CPU, half of a smoke run), a forked one has them.
    """

    budget: Budget = DEFAULT_BUDGET

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        b = self.budget
        self.num_epochs = b.epochs
        self.num_iterations_per_epoch = b.iterations
        self.num_val_iterations_per_epoch = b.val_iterations
        self.save_every = b.save_every
        cm = self.configuration_manager
        if b.max_batch_size and cm.batch_size > b.max_batch_size:
            # a copy: the plans (and the model folder's plans.json) keep their batch size
            cm.configuration = dict(cm.configuration, batch_size=b.max_batch_size)
        threads = os.environ.get("OMP_NUM_THREADS", "")
        if b.for_tests and threads.isdigit() and int(threads) > 0:
            torch.set_num_threads(int(threads))  # tests run two smoke runs side by side, each on its share

    def perform_actual_validation(self, save_probabilities: bool = False):
        if not self.budget.for_tests:
            return super().perform_actual_validation(save_probabilities)
        import multiprocessing

        get_context = multiprocessing.get_context

        def forking(method=None):
            fork = method == "spawn" and "fork" in multiprocessing.get_all_start_methods()
            return get_context("fork" if fork else method)

        multiprocessing.get_context = forking
        try:
            return super().perform_actual_validation(save_probabilities)
        finally:
            multiprocessing.get_context = get_context
