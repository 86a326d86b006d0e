"""The pruning methods, one trainer class each, on nnU-Net's default budget (settings: docs/methods.md).

Other budgets are names (``nnUNetTrainerSTAMP_250epochs``, ``nnUNetTrainerSTAMP_demo``): see
:mod:`nnunet_pruning.trainers.named`; the list of methods is :mod:`nnunet_pruning.trainers.registry`."""

from __future__ import annotations

from nnunet_pruning.core.schedule import PruningSchedule
from .pruning import nnUNetTrainerPruningBase

__all__ = ["nnUNetTrainerSTAMP", "nnUNetTrainerSTAMPFlops", "nnUNetTrainerRandomLargest", "nnUNetTrainerSTAMPRandomChannel",
           "nnUNetTrainerSTAMPLatency", "nnUNetTrainerRandomLargestLatency"]


class nnUNetTrainerSTAMP(nnUNetTrainerPruningBase):
    """STAMP: Taylor scores from the normal training iterations and targeted dropout; prunes to <= 20% of the
    parameters."""

    pruning_schedule = PruningSchedule(method="taylor")


class nnUNetTrainerSTAMPFlops(nnUNetTrainerPruningBase):
    """STAMP with FLOPs-weighted scores; prunes to <= 50% of the GFLOPs at the patch size."""

    pruning_schedule = PruningSchedule(method="taylor_flops", target_metric="gflops", keep_fraction=0.5)


class nnUNetTrainerRandomLargest(nnUNetTrainerPruningBase):
    """Random channels, always from the currently widest layer (seeded from the fold); prunes to <= 20% of the
    parameters."""

    pruning_schedule = PruningSchedule(method="random_largest")


class nnUNetTrainerSTAMPLatency(nnUNetTrainerPruningBase):
    """STAMP to a measured time: prunes until one forward pass at the patch size takes <= 50% of the unpruned
    time on the training device (``_cpu<T>``: on the CPU with T threads); scores divided by the time a channel
    saves."""

    pruning_schedule = PruningSchedule(method="taylor", target_metric="latency", keep_fraction=0.5)


class nnUNetTrainerRandomLargestLatency(nnUNetTrainerPruningBase):
    """Random-largest to <= 50% of the measured forward time, only from layers whose narrowing is measured
    faster."""

    pruning_schedule = PruningSchedule(method="random_largest", target_metric="latency", keep_fraction=0.5)


class nnUNetTrainerSTAMPRandomChannel(nnUNetTrainerPruningBase):
    """STAMP picks the layer, the channel in it is random; prunes to <= 20% of the parameters."""

    pruning_schedule = PruningSchedule(method="taylor_layer_random")
