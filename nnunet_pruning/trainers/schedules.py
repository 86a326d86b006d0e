"""Short training schedules as mixins, for CPU tests and demos (nnU-Net's default is 1000 x 250)."""

from __future__ import annotations

import os

import torch

__all__ = ["ShortSchedule", "SmokeSchedule", "PruningSmokeSchedule", "DemoSchedule"]


class ShortSchedule:
    """Mixin that overrides nnU-Net's epoch and iteration counts after ``nnUNetTrainer.__init__``.

    Put it first in the bases: ``class MyTrainer(SmokeSchedule, nnUNetTrainerFlatUNet)``.
    """

    schedule_epochs: int = 1000
    schedule_iterations: int = 250
    schedule_val_iterations: int = 50
    schedule_save_every: int = 50  # checkpoint_latest.pth every this many epochs
    schedule_max_batch_size: int | None = None  # cap on the plans' batch size (None: the plans' own)

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = self.schedule_epochs
        self.num_iterations_per_epoch = self.schedule_iterations
        self.num_val_iterations_per_epoch = self.schedule_val_iterations
        self.save_every = self.schedule_save_every
        cm = self.configuration_manager
        if self.schedule_max_batch_size and cm.batch_size > self.schedule_max_batch_size:
            # a copy: the plans (and the model folder's plans.json) keep their batch size
            cm.configuration = dict(cm.configuration, batch_size=self.schedule_max_batch_size)


class SmokeSchedule(ShortSchedule):
    """1 epoch of 2 iterations of at most 2 cases, 1 validation iteration: proves the plumbing, learns nothing
    (ResEnc plans of small 2D images ask for batches of 80: seconds per step on a CPU, for nothing here).

    For tests only: ``OMP_NUM_THREADS`` (when set) limits torch's threads, where ``nnUNetv2_train -device cpu``
    takes every core; and the final validation's export pool forks instead of spawning: a spawned worker imports
    torch and nnU-Net again (~8 s on a 2-core CPU, half of a smoke run), a forked one has them. nnU-Net's data
    augmentation workers fork as well; everything else of the validation is nnU-Net's own."""

    schedule_epochs = 1
    schedule_iterations = 2
    schedule_val_iterations = 1
    schedule_save_every = 1
    schedule_max_batch_size = 2

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        threads = os.environ.get("OMP_NUM_THREADS", "")
        if threads.isdigit() and int(threads) > 0:  # nnUNetv2_train -device cpu takes every core; tests run two
            torch.set_num_threads(int(threads))  # smoke runs side by side, each on its share

    def perform_actual_validation(self, save_probabilities: bool = False):
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


class PruningSmokeSchedule(SmokeSchedule):
    """4 epochs of 2 iterations, a checkpoint every epoch: room for pruning steps, for tests."""

    schedule_epochs = 4


class DemoSchedule(ShortSchedule):
    """5 epochs of 20 iterations (100 SGD steps): the demo's budget on a 2-core CPU (4 models in < 20 min)."""

    schedule_epochs = 5
    schedule_iterations = 20
    schedule_val_iterations = 5
