"""The Flat U-Net trainer: the plans' own U-Net class with every stage at one width (other widths by name:
``nnUNetTrainerFlatUNet16``, see :mod:`nnunet_pruning.trainers.named`)."""

from __future__ import annotations

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

from nnunet_pruning.adapter.flat import flat_arch_kwargs
from nnunet_pruning.core.onednn import use_onednn_convolutions
from nnunet_pruning.core.resizable import make_resizable
from .guards import TrainerGuards
from .inference_backend import with_inference_backend
from .memory_format import ChannelsLastOnCpu

__all__ = ["nnUNetTrainerFlatUNet"]


class nnUNetTrainerFlatUNet(TrainerGuards, ChannelsLastOnCpu, nnUNetTrainer):
    """The plans' U-Net (PlainConvUNet or ResidualEncoderUNet), every stage at the stage-0 width (32 for
    nnU-Net's default plans; ``nnUNetTrainerFlatUNet<W>``: W filters)."""

    flat_width: int | None = None  # None: the width of stage 0 in the plans

    @classmethod
    def build_network_architecture(cls, plans_manager, configuration_manager, num_input_channels: int,
                                   num_output_channels: int, enable_deep_supervision: bool = True):
        # A classmethod so variants only change ``flat_width``; nnU-Net calls it on the class at predict
        # time with the same arguments, so predict rebuilds exactly the trained network. Resizable, so a
        # flat net that was pruned afterwards loads too; oneDNN convolutions on the CPU (core/onednn.py);
        # inference on the fastest runtime (inference_backend.py).
        class_name = configuration_manager.network_arch_class_name
        kwargs = flat_arch_kwargs(class_name, configuration_manager.network_arch_init_kwargs, cls.flat_width)
        return with_inference_backend(use_onednn_convolutions(make_resizable(get_network_from_plans(
            class_name, kwargs, configuration_manager.network_arch_init_kwargs_req_import, num_input_channels,
            num_output_channels, allow_init=True, deep_supervision=enable_deep_supervision))))
