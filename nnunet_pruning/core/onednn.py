"""3D convolutions on the CPU through oneDNN, also where PyTorch's heuristic would take its slow fallback.

PyTorch runs a CPU ``Conv3d`` through oneDNN only when the batch is > 1 or batch x channels x D x H > 20480
(``use_mkldnn`` in ATen's ``Convolution.cpp``); otherwise ``slow_conv3d``, a generic im2col path. nnU-Net's
predictor feeds one tile at a time (batch 1), so every 3x3x3 layer of a small patch or a deep stage takes the
fallback -- and pruning makes layers thinner, pushing more of them below the threshold. Measured on a 2-core
CPU: one Conv3d(16, 16) at 32^3, batch 1, took 72 ms, one with 21 channels (above the threshold) 7.5 ms
(``scripts/benchmark_conv_channels.py``, docs/benchmarks/conv_channels.json); with this module the demo's STAMP
model's forward pass ran at 36% of stock's time instead of above 100%, stock's own at 74%
(``scripts/benchmark_inference.py``, docs/benchmarks/inference_onednn_demo_plans.json). 1x1x1 convolutions (the
segmentation heads) are left to PyTorch's choice.

:func:`use_onednn_convolutions` swaps the class of a network's ``nn.Conv3d`` modules (in place, like
:func:`~nnunet_pruning.core.resizable.make_resizable`): same parameters, same state-dict keys, same
numbers up to float rounding; only the CPU kernel choice changes, and only for float32 inputs outside
autocast.

Under ``torch.compile`` (``nnUNet_compile=1 nnUNetv2_predict`` on a CPU) oneDNN's convolution is traced as an
opaque custom operator, ``nnunet_pruning::onednn_conv3d`` (ATen's ``mkldnn_convolution`` has no fake-tensor
kernel to trace with), so a compiled network keeps the kernel choice and the compiler fuses the rest around it.
That holds where no gradient is wanted (inference); with gradients, and on a PyTorch without
``torch.library.custom_op`` (< 2.4), the compiled graph has PyTorch's own convolution.
"""

from __future__ import annotations

from typing import List, Optional

import torch
from torch import nn

__all__ = ["OneDnnConv3d", "use_onednn_convolutions", "onednn_applies", "traced_onednn_conv3d"]


#: whether this PyTorch has oneDNN (asked once: the compiler does not trace the question)
_ONEDNN_BUILT = torch.backends.mkldnn.is_available()


def onednn_applies(conv: nn.Conv3d, input: torch.Tensor) -> bool:
    """Whether this call goes to oneDNN explicitly: a CPU float32 input and weight, a zero-padded kernel
    larger than 1x1x1, oneDNN present and enabled (the flag is read in eager calls only), no CPU autocast, not
    traced for TorchScript or ONNX."""
    return (input.device.type == "cpu" and input.dtype == torch.float32 and conv.weight.dtype == torch.float32
            and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)
            and conv.kernel_size != (1, 1, 1) and _ONEDNN_BUILT
            and (torch.compiler.is_compiling() or torch.backends.mkldnn.enabled)
            and not torch.is_autocast_enabled("cpu")
            and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export())


def _output_layout(input: torch.Tensor, weight: torch.Tensor) -> torch.memory_format:
    """The memory format of oneDNN's output (channels-last when the input or the weight is): the custom
    operator returns it in the real call and says so to the tracer."""
    channels_last = torch.channels_last_3d
    return channels_last if any(not t.is_contiguous() and t.is_contiguous(memory_format=channels_last)
                                for t in (input, weight)) else torch.contiguous_format


def _onednn_conv3d(input: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], padding: List[int],
                   stride: List[int], dilation: List[int], groups: int) -> torch.Tensor:
    out = torch.ops.aten.mkldnn_convolution(input, weight, bias, padding, stride, dilation, groups)
    return out.contiguous(memory_format=_output_layout(input, weight))


def _onednn_conv3d_shape(input, weight, bias, padding, stride, dilation, groups):
    size = [input.shape[0], weight.shape[0]]
    for i in range(3):
        size.append((input.shape[2 + i] + 2 * padding[i] - dilation[i] * (weight.shape[2 + i] - 1) - 1) // stride[i]
                    + 1)
    return input.new_empty(size).contiguous(memory_format=_output_layout(input, weight))


#: the compiled graph's oneDNN convolution (None on a PyTorch without torch.library.custom_op)
traced_onednn_conv3d = None
if hasattr(torch.library, "custom_op"):
    traced_onednn_conv3d = torch.library.custom_op("nnunet_pruning::onednn_conv3d", _onednn_conv3d,
                                                   mutates_args=())
    traced_onednn_conv3d.register_fake(_onednn_conv3d_shape)


class OneDnnConv3d(nn.Conv3d):
    """An ``nn.Conv3d`` whose CPU float32 calls always take oneDNN (see the module docstring)."""

    def _conv_forward(self, input, weight, bias):
        if not onednn_applies(self, input):
            return super()._conv_forward(input, weight, bias)
        if not torch.compiler.is_compiling():
            return torch.ops.aten.mkldnn_convolution(input, weight, bias, self.padding, self.stride, self.dilation,
                                                     self.groups)
        if traced_onednn_conv3d is None or (torch.is_grad_enabled() and any(
                t is not None and t.requires_grad for t in (input, weight, bias))):
            return super()._conv_forward(input, weight, bias)  # the custom operator has no backward
        return traced_onednn_conv3d(input, weight, bias, list(self.padding), list(self.stride), list(self.dilation),
                                    self.groups)


def use_onednn_convolutions(network: nn.Module) -> nn.Module:
    """Give every plain ``nn.Conv3d`` of ``network`` the class :class:`OneDnnConv3d`, in place; return it."""
    for module in network.modules():
        if type(module) is nn.Conv3d:
            module.__class__ = OneDnnConv3d
    return network
