"""Stock nnU-Net with a short schedule: the baseline for CPU tests and the demo (network unchanged)."""

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from .schedules import DemoSchedule, SmokeSchedule

__all__ = ["nnUNetTrainerStock_smoke", "nnUNetTrainerStock_demo"]


class nnUNetTrainerStock_smoke(SmokeSchedule, nnUNetTrainer):
    """nnU-Net's own trainer and network, 1 epoch x 2 iterations: for tests."""


class nnUNetTrainerStock_demo(DemoSchedule, nnUNetTrainer):
    """nnU-Net's own trainer and network on the demo schedule."""
