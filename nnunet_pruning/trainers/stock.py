"""Stock nnU-Net with a short schedule: the baseline for CPU tests and the demo (network unchanged)."""

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from .guards import TrainerGuards
from .memory_format import ChannelsLastOnCpu
from .schedules import DemoSchedule, SmokeSchedule

__all__ = ["nnUNetTrainerStock_smoke", "nnUNetTrainerStock_demo", "nnUNetTrainerStockChannelsLast_demo"]


class nnUNetTrainerStock_smoke(SmokeSchedule, nnUNetTrainer):
    """nnU-Net's own trainer and network, 1 epoch x 2 iterations: for tests."""


class nnUNetTrainerStock_demo(DemoSchedule, nnUNetTrainer):
    """nnU-Net's own trainer and network on the demo schedule."""


class nnUNetTrainerStockChannelsLast_demo(DemoSchedule, TrainerGuards, ChannelsLastOnCpu, nnUNetTrainer):
    """nnU-Net's own network on the demo schedule, trained channels-last on the CPU as this package's trainers
    are: the baseline that separates the layout's share of a speedup from pruning's
    (scripts/benchmark_training_time.py)."""
