"""The pruning trainers users ask for by name, and their short variants (settings: docs/methods.md)."""

from __future__ import annotations

from dataclasses import replace

from nnunet_pruning.core.schedule import PruningSchedule
from .pruning import nnUNetTrainerPruningBase
from .schedules import DemoSchedule, PruningSmokeSchedule

__all__ = ["nnUNetTrainerSTAMP", "nnUNetTrainerSTAMPFlops", "nnUNetTrainerRandomLargest", "nnUNetTrainerSTAMPLatency",
           "nnUNetTrainerRandomLargestLatency",
           "nnUNetTrainerSTAMPRandomChannel", "nnUNetTrainerSTAMP_smoke", "nnUNetTrainerSTAMPFlops_smoke",
           "nnUNetTrainerRandomLargest_smoke", "nnUNetTrainerSTAMPRandomChannel_smoke", "nnUNetTrainerSTAMP_demo",
           "nnUNetTrainerRandomLargest_demo"]

#: the smoke variants prune after epochs 0 and 1, 25% of the original size per step, down to 50%
SMOKE = dict(keep_fraction=0.5, warmup_epochs=1, every_epochs=1, step_fraction=0.25)
#: the demo variants prune after epochs 0, 1 and 2 (30% of the original parameters per step) down to 20%,
#: then recover for 2 epochs
DEMO = dict(keep_fraction=0.2, warmup_epochs=1, every_epochs=1, step_fraction=0.3)


class nnUNetTrainerSTAMP(nnUNetTrainerPruningBase):
    """STAMP: Taylor scores + targeted dropout; keep <= 20% of the parameters."""

    pruning_schedule = PruningSchedule(method="taylor")


class nnUNetTrainerSTAMPFlops(nnUNetTrainerPruningBase):
    """STAMP with FLOPs-weighted scores; keep <= 50% of the GFLOPs at the patch size."""

    pruning_schedule = PruningSchedule(method="taylor_flops", target_metric="gflops", keep_fraction=0.5)


class nnUNetTrainerRandomLargest(nnUNetTrainerPruningBase):
    """Random channels, always from the currently widest group; keep <= 20% of the parameters."""

    pruning_schedule = PruningSchedule(method="random_largest")


class nnUNetTrainerSTAMPLatency(nnUNetTrainerPruningBase):
    """STAMP to a measured time: keep <= 50% of the forward time at the patch size, measured on the training
    device; scores divided by the time a channel saves."""

    pruning_schedule = PruningSchedule(method="taylor", target_metric="latency", keep_fraction=0.5)


class nnUNetTrainerRandomLargestLatency(nnUNetTrainerPruningBase):
    """Random-largest to a measured time: keep <= 50% of the forward time at the patch size, measured on the
    training device; groups whose narrowing is not faster keep their channels."""

    pruning_schedule = PruningSchedule(method="random_largest", target_metric="latency", keep_fraction=0.5)


class nnUNetTrainerSTAMPRandomChannel(nnUNetTrainerPruningBase):
    """STAMP chooses the group, the channel in it is random; keep <= 20% of the parameters."""

    pruning_schedule = PruningSchedule(method="taylor_layer_random")


class nnUNetTrainerSTAMP_smoke(PruningSmokeSchedule, nnUNetTrainerSTAMP):
    pruning_schedule = replace(nnUNetTrainerSTAMP.pruning_schedule, **SMOKE)


class nnUNetTrainerSTAMPFlops_smoke(PruningSmokeSchedule, nnUNetTrainerSTAMPFlops):
    pruning_schedule = replace(nnUNetTrainerSTAMPFlops.pruning_schedule, **SMOKE)


class nnUNetTrainerRandomLargest_smoke(PruningSmokeSchedule, nnUNetTrainerRandomLargest):
    pruning_schedule = replace(nnUNetTrainerRandomLargest.pruning_schedule, **SMOKE)


class nnUNetTrainerSTAMPRandomChannel_smoke(PruningSmokeSchedule, nnUNetTrainerSTAMPRandomChannel):
    pruning_schedule = replace(nnUNetTrainerSTAMPRandomChannel.pruning_schedule, **SMOKE)


class nnUNetTrainerSTAMP_demo(DemoSchedule, nnUNetTrainerSTAMP):
    pruning_schedule = replace(nnUNetTrainerSTAMP.pruning_schedule, **DEMO)


class nnUNetTrainerRandomLargest_demo(DemoSchedule, nnUNetTrainerRandomLargest):
    pruning_schedule = replace(nnUNetTrainerRandomLargest.pruning_schedule, **DEMO)
