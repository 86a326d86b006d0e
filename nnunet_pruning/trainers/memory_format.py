"""Channels-last training on the CPU: the mixin every trainer of this package uses.

On the CPU, oneDNN's 3D convolution backward runs faster in the channels-last (NDHWC) layout, and more so for
thin layers: measured on a 2-core CPU with whole ``nnUNetv2_train`` runs (``scripts/benchmark_training_time.py``,
docs/benchmarks/training_time_demo.json), the pruned epochs of the demo's STAMP run took a median 10.5 s instead
of 13.3 s, stock's epochs 125 s instead of 139 s in all. nnU-Net trains in the default (NCDHW) layout; this mixin
converts a 3D network's parameters and each input batch to channels-last for training (and, in the pruning
trainers, again after every pruning step, whose surgery makes new contiguous tensors), and back to the default
layout when training ends, so checkpoints, ``--val`` and the predictor see nnU-Net's usual layout. Numbers
change only by float rounding. Only on the CPU (not measured on a GPU, where nnU-Net compiles instead);
``nnUNet_pruning_channels_last=0`` turns it off (the benchmarks use it to separate layout from pruning).
"""

from __future__ import annotations

import os

import torch

from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.wrappers import unwrap
from .inference_backend import check_backend_setting

__all__ = ["ChannelsLastOnCpu", "CHANNELS_LAST_VARIABLE", "channels_last_enabled"]

CHANNELS_LAST_VARIABLE = "nnUNet_pruning_channels_last"
_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def channels_last_enabled() -> bool:
    """The variable's setting (default on); a value that is neither on nor off is a one-line error."""
    value = os.environ.get(CHANNELS_LAST_VARIABLE, "1").strip().lower()
    if value not in _ON + _OFF:
        raise PruningError(f"{CHANNELS_LAST_VARIABLE}={os.environ[CHANNELS_LAST_VARIABLE]!r} is neither on nor off; "
                           f"set it to 1 or 0")
    return value in _ON


def _input_to_channels_last(module, args):
    if args and torch.is_tensor(args[0]) and args[0].dim() == 5:
        return (args[0].contiguous(memory_format=torch.channels_last_3d),) + tuple(args[1:])
    return None


class ChannelsLastOnCpu:
    """Mixin for nnU-Net trainers (put it before ``nnUNetTrainer``): 3D CPU training in channels-last."""

    _channels_last_hook = None

    def __init__(self, *args, **kwargs):
        channels_last_enabled()  # a bad value is one line before nnU-Net creates the fold folder
        check_backend_setting()  # the same for the inference backend (inference_backend.py)
        super().__init__(*args, **kwargs)

    def channels_last_training(self) -> bool:
        """Whether this run trains channels-last: a CPU device, a 3D network, the variable not off."""
        return (self.device.type == "cpu" and self.configuration_manager.patch_size is not None
                and len(self.configuration_manager.patch_size) == 3 and channels_last_enabled())

    def _plain_network(self):
        return unwrap(self.network)  # under torch.compile (and DDP): the module itself

    def apply_channels_last(self) -> None:
        """Parameters (and gradients) to channels-last; inputs converted by a forward pre-hook. Idempotent:
        the pruning trainers call it again after each step. Parameters keep their identity (the optimizer's)."""
        if not self.channels_last_training():
            return
        module = self._plain_network()
        module.to(memory_format=torch.channels_last_3d)
        if self._channels_last_hook is None:
            self._channels_last_hook = module.register_forward_pre_hook(_input_to_channels_last)
            self.print_to_log_file(f"training in the channels-last layout on the CPU (faster oneDNN convolutions; "
                                   f"{CHANNELS_LAST_VARIABLE}=0 turns it off)")

    def restore_default_layout(self) -> None:
        """Back to nnU-Net's layout: no input hook, contiguous parameters."""
        if self._channels_last_hook is None:
            return
        self._channels_last_hook.remove()
        self._channels_last_hook = None
        self._plain_network().to(memory_format=torch.contiguous_format)

    def on_train_start(self):
        super().on_train_start()
        self.apply_channels_last()

    def on_train_end(self):
        self.restore_default_layout()
        super().on_train_end()
