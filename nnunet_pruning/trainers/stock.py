"""Stock nnU-Net under this package's names, so that a stock baseline takes the same budgets by name."""

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from .guards import TrainerGuards
from .memory_format import ChannelsLastOnCpu

__all__ = ["nnUNetTrainerStock", "nnUNetTrainerStockChannelsLast"]


class nnUNetTrainerStock(nnUNetTrainer):
    """nnU-Net's own trainer and network, unchanged (``nnUNetTrainer``), under a name that takes the budgets
    (``nnUNetTrainerStock_250epochs_50iters``): the baseline with the pruned models' budget."""


class nnUNetTrainerStockChannelsLast(TrainerGuards, ChannelsLastOnCpu, nnUNetTrainer):
    """nnU-Net's own network, trained channels-last on the CPU as this package's trainers are: the baseline that
    separates the layout's share of a speedup from pruning's (scripts/benchmark_training_time.py)."""
