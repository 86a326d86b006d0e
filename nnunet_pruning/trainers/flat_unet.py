"""Flat U-Net trainers: the plans' own U-Net class with every stage at one width."""

from __future__ import annotations

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

from nnunet_pruning.adapter.flat import flat_arch_kwargs
from nnunet_pruning.core.onednn import use_onednn_convolutions
from nnunet_pruning.core.resizable import make_resizable
from .guards import TrainerGuards
from .memory_format import ChannelsLastOnCpu
from .schedules import DemoSchedule, SmokeSchedule

__all__ = ["nnUNetTrainerFlatUNet", "nnUNetTrainerFlatUNet16", "nnUNetTrainerFlatUNet64",
           "nnUNetTrainerFlatUNet_smoke", "nnUNetTrainerFlatUNet16_smoke", "nnUNetTrainerFlatUNet_demo"]


class nnUNetTrainerFlatUNet(TrainerGuards, ChannelsLastOnCpu, nnUNetTrainer):
    """Every stage at the plans' stage-0 width (32 for nnU-Net's default plans)."""

    flat_width: int | None = None  # None: the width of stage 0 in the plans

    @classmethod
    def build_network_architecture(cls, plans_manager, configuration_manager, num_input_channels: int,
                                   num_output_channels: int, enable_deep_supervision: bool = True):
        # A classmethod so variants only change ``flat_width``; nnU-Net calls it on the class at predict
        # time with the same arguments, so predict rebuilds exactly the trained network. Resizable, so a
        # flat net that was pruned afterwards loads too; oneDNN convolutions on the CPU (core/onednn.py).
        class_name = configuration_manager.network_arch_class_name
        kwargs = flat_arch_kwargs(class_name, configuration_manager.network_arch_init_kwargs, cls.flat_width)
        return use_onednn_convolutions(make_resizable(get_network_from_plans(
            class_name, kwargs, configuration_manager.network_arch_init_kwargs_req_import, num_input_channels,
            num_output_channels, allow_init=True, deep_supervision=enable_deep_supervision)))


class nnUNetTrainerFlatUNet16(nnUNetTrainerFlatUNet):
    flat_width = 16


class nnUNetTrainerFlatUNet64(nnUNetTrainerFlatUNet):
    flat_width = 64


class nnUNetTrainerFlatUNet_smoke(SmokeSchedule, nnUNetTrainerFlatUNet):
    """Flat U-Net, 1 epoch x 2 iterations: for tests."""


class nnUNetTrainerFlatUNet16_smoke(SmokeSchedule, nnUNetTrainerFlatUNet16):
    """Flat-16 U-Net, 1 epoch x 2 iterations: for tests."""


class nnUNetTrainerFlatUNet_demo(DemoSchedule, nnUNetTrainerFlatUNet):
    """Flat U-Net on the demo schedule."""
