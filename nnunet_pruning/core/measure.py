"""Model measurements: parameters, GFLOPs, conv widths per stage, checkpoint size.

Conventions used everywhere in the package:

- ``params`` is ``sum(p.numel() for p in model.parameters())`` -- deduplicated, never from a state dict
  (dynamic-network-architectures aliases modules, so a state dict lists most tensors several times).
- ``gflops`` is one forward pass of batch size 1 at the given spatial size, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (convolutions, transposed convolutions and matmuls;
  one multiply-add is 2 FLOPs), divided by 1e9. The count runs on the ``meta`` device, so it costs no
  memory and no compute, whatever the patch size.
"""

from __future__ import annotations

import copy
import os
import re
from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nnunet_pruning.core.errors import PruningError

__all__ = ["GFLOPS_UNIT", "architecture_name", "input_channels_of", "inference_copy_on_meta", "count_params",
           "count_gflops",
           "conv_widths", "measure_network", "file_bytes"]

GFLOPS_UNIT = "GFLOPs per forward pass, batch 1 (torch FlopCounterMode; 1 multiply-add = 2 FLOPs)"

_STAGE_PATTERN = re.compile(
    r"^(encoder\.stem|encoder\.stages\.\d+|decoder\.transpconvs\.\d+|decoder\.stages\.\d+|decoder\.seg_layers\.\d+)"
)


def count_params(model: nn.Module) -> int:
    """Number of parameters, each shared tensor counted once."""
    return int(sum(p.numel() for p in model.parameters()))


def inference_copy_on_meta(model: nn.Module) -> nn.Module:
    """A copy on the meta device in eval mode with deep supervision off: the network as it predicts."""
    meta_model = copy.deepcopy(model).to("meta").eval()
    decoder = getattr(meta_model, "decoder", None)
    if decoder is not None and hasattr(decoder, "deep_supervision"):
        decoder.deep_supervision = False
    return meta_model


def count_gflops(model: nn.Module, input_channels: int, spatial_size: Sequence[int]) -> float:
    """GFLOPs of one batch-1 inference forward pass at ``spatial_size`` (deep supervision off; see the
    module docstring for the unit)."""
    meta_model = inference_copy_on_meta(model)
    x = torch.zeros((1, input_channels, *spatial_size), device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta_model(x)
    return counter.get_total_flops() / 1e9


def conv_widths(model: nn.Module) -> "OrderedDict[str, list[int]]":
    """Output channels of every conv and transposed conv, grouped by stage, in forward order.

    Keys are module prefixes such as ``encoder.stages.0`` or ``decoder.transpconvs.1``; modules outside
    a U-Net stage are grouped under their parent's name.
    """
    widths: "OrderedDict[str, list[int]]" = OrderedDict()
    for name, module in model.named_modules():  # deduplicated: aliases appear once
        if isinstance(module, nn.modules.conv._ConvNd):
            match = _STAGE_PATTERN.match(name)
            key = match.group(1) if match else name.rsplit(".", 1)[0]
            widths.setdefault(key, []).append(int(module.out_channels))
    return widths


def input_channels_of(model: nn.Module) -> int:
    for module in model.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            return int(module.in_channels)
    raise PruningError("the model has no convolution; pass a U-Net (PlainConvUNet or ResidualEncoderUNet)")


def architecture_name(model: nn.Module) -> str:
    """The network's class name, without the ``Resizable`` prefix of resizable networks."""
    name = type(model).__name__
    return name[len("Resizable"):] if name.startswith("Resizable") else name


def measure_network(model: nn.Module, spatial_size: Sequence[int]) -> dict:
    """Everything :mod:`count <nnunet_pruning.app.cli>` reports for one network."""
    return {
        "architecture": architecture_name(model),
        "params": count_params(model),
        "gflops": count_gflops(model, input_channels_of(model), spatial_size),
        "patch_size": [int(s) for s in spatial_size],
        "widths": {k: v for k, v in conv_widths(model).items()},
    }


def file_bytes(path: str) -> int:
    return os.path.getsize(path)
