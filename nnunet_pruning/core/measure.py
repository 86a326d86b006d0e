"""Model measurements: parameters, GFLOPs, conv widths per stage, checkpoint size.

Conventions used everywhere in the package:

- ``params`` is ``sum(p.numel() for p in model.parameters())`` -- deduplicated, never from a state dict
  (dynamic-network-architectures aliases modules, so a state dict lists most tensors several times).
- ``gflops`` is one forward pass of batch size 1 at the given spatial size, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (convolutions, transposed convolutions and matmuls;
  one multiply-add is 2 FLOPs), divided by 1e9. The count runs on the ``meta`` device, so it costs no
  memory and no compute, whatever the patch size.

Pruning changes widths, never where a convolution runs or on how many voxels: so the first count of a
network's layout (its modules' types and geometry, the input size) runs ``FlopCounterMode`` once and records
each convolution's voxels (:func:`conv_voxels`); later counts of that layout, at any widths, are the
convolution formula ``FlopCounterMode`` uses (2 x voxels x weight elements) on the current weights, without a
copy or a forward pass. The record is kept only where that formula gave ``FlopCounterMode``'s own total
(a layout with other counted operations, e.g. a matmul, is counted by ``FlopCounterMode`` every time).
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
           "count_gflops", "conv_voxels",
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


#: geometry attributes of a module that decide the shapes it produces (a module's widths never do)
_GEOMETRY = ("kernel_size", "stride", "padding", "dilation", "output_padding", "padding_mode", "scale_factor",
             "mode", "ceil_mode", "return_indices")
#: layout -> (per conv name: its voxels per call, whether the conv formula gave FlopCounterMode's total)
_LAYOUTS: "OrderedDict[tuple, tuple[dict[str, list[int]], bool]]" = OrderedDict()
LAYOUT_CACHE_SIZE = 64


def _hashable(value):
    return tuple(_hashable(v) for v in value) if isinstance(value, (list, tuple)) else value


def _layout(model: nn.Module, input_channels: int, spatial_size: Sequence[int]) -> tuple:
    """What decides every convolution's voxels in an inference forward: the input, each module's type and
    geometry (not its widths)."""
    return (int(input_channels), tuple(int(s) for s in spatial_size),
            tuple((name, type(m).__module__, type(m).__qualname__, _hashable(tuple(getattr(m, a, None)
                                                                              for a in _GEOMETRY)))
                  for name, m in model.named_modules()))


def _conv_flops(conv: nn.Module, voxels: int) -> int:
    """``FlopCounterMode``'s count of one convolution call: 2 x output voxels (transposed: input voxels) x
    the weight's elements (out x in / groups x kernel)."""
    return 2 * voxels * conv.weight.numel()


def _count_and_record(model: nn.Module, input_channels: int, spatial_size: Sequence[int]):
    """One ``FlopCounterMode`` forward on a meta copy, recording each convolution's voxels per call."""
    meta_model = inference_copy_on_meta(model)
    voxels: dict[str, list[int]] = {}
    handles = []
    for name, module in meta_model.named_modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            def hook(m, inputs, output, name=name):
                tensor = inputs[0] if isinstance(m, nn.modules.conv._ConvTransposeNd) else output
                voxels.setdefault(name, []).append(int(tensor[0, 0].numel()))
            handles.append(module.register_forward_hook(hook))
    x = torch.zeros((1, input_channels, *spatial_size), device="meta")
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            meta_model(x)
    finally:
        for handle in handles:
            handle.remove()
    modules = dict(meta_model.named_modules())
    formula = sum(_conv_flops(modules[name], v) for name, calls in voxels.items() for v in calls)
    return counter.get_total_flops(), voxels, formula == counter.get_total_flops()


def _recorded(model: nn.Module, input_channels: int, spatial_size: Sequence[int]):
    """(voxels per conv name, exact) of ``model``'s layout, recorded on first use; plus the total when it was
    counted now. A layout that cannot be a key (a module's geometry attribute of an unhashable kind) is counted
    every time."""
    key = _layout(model, input_channels, spatial_size)
    try:
        if key in _LAYOUTS:
            _LAYOUTS.move_to_end(key)
            return _LAYOUTS[key], None
    except TypeError:
        total, voxels, _ = _count_and_record(model, input_channels, spatial_size)
        return (voxels, False), total
    total, voxels, exact = _count_and_record(model, input_channels, spatial_size)
    _LAYOUTS[key] = (voxels, exact)
    while len(_LAYOUTS) > LAYOUT_CACHE_SIZE:
        _LAYOUTS.popitem(last=False)
    return (voxels, exact), total


def conv_voxels(model: nn.Module, input_channels: int, spatial_size: Sequence[int]) -> dict[str, int]:
    """Per convolution (by module name): the voxels it computes in one batch-1 inference forward at
    ``spatial_size`` (its output's; a transposed convolution's: its input's; summed over calls). Convolutions
    that do not run (deep supervision's unused heads) are absent."""
    (voxels, _), _ = _recorded(model, input_channels, spatial_size)
    return {name: sum(calls) for name, calls in voxels.items()}


def count_gflops(model: nn.Module, input_channels: int, spatial_size: Sequence[int]) -> float:
    """GFLOPs of one batch-1 inference forward pass at ``spatial_size`` (deep supervision off; see the
    module docstring for the unit and for what is reused between calls)."""
    (voxels, exact), total = _recorded(model, input_channels, spatial_size)
    if total is None and not exact:
        total, _, _ = _count_and_record(model, input_channels, spatial_size)
    if total is None:
        modules = dict(model.named_modules())
        total = sum(_conv_flops(modules[name], v) for name, calls in voxels.items() for v in calls)
    return total / 1e9


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
