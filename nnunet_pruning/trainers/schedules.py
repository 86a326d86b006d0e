"""Short training schedules as mixins, for CPU tests and demos (nnU-Net's default is 1000 x 250)."""

from __future__ import annotations

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

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = self.schedule_epochs
        self.num_iterations_per_epoch = self.schedule_iterations
        self.num_val_iterations_per_epoch = self.schedule_val_iterations
        self.save_every = self.schedule_save_every


class SmokeSchedule(ShortSchedule):
    """1 epoch of 2 iterations and 1 validation iteration: proves the plumbing, learns nothing."""

    schedule_epochs = 1
    schedule_iterations = 2
    schedule_val_iterations = 1
    schedule_save_every = 1


class PruningSmokeSchedule(SmokeSchedule):
    """4 epochs of 2 iterations, a checkpoint every epoch: room for pruning steps, for tests."""

    schedule_epochs = 4


class DemoSchedule(ShortSchedule):
    """5 epochs of 20 iterations (100 SGD steps): the demo's budget on a 2-core CPU (4 models in < 20 min)."""

    schedule_epochs = 5
    schedule_iterations = 20
    schedule_val_iterations = 5
