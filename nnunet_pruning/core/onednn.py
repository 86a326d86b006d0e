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
autocast and outside ``torch.compile``'s tracing (which keeps PyTorch's own dispatch).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["OneDnnConv3d", "use_onednn_convolutions", "onednn_applies"]


def onednn_applies(conv: nn.Conv3d, input: torch.Tensor) -> bool:
    """Whether this call goes to oneDNN explicitly: a CPU float32 input and weight, a zero-padded kernel
    larger than 1x1x1, oneDNN present and enabled, no CPU autocast, not being compiled."""
    return (input.device.type == "cpu" and input.dtype == torch.float32 and conv.weight.dtype == torch.float32
            and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)
            and conv.kernel_size != (1, 1, 1) and torch.backends.mkldnn.is_available()
            and torch.backends.mkldnn.enabled and not torch.is_autocast_enabled("cpu")
            and not torch.compiler.is_compiling() and not torch.jit.is_tracing()
            and not torch.onnx.is_in_onnx_export())


class OneDnnConv3d(nn.Conv3d):
    """An ``nn.Conv3d`` whose CPU float32 calls always take oneDNN (see the module docstring)."""

    def _conv_forward(self, input, weight, bias):
        # is_compiling() first: under torch.compile nothing else is evaluated, so the traced graph is always
        # PyTorch's own convolution (mkldnn_convolution has no fake-tensor kernel to trace with)
        if torch.compiler.is_compiling() or not onednn_applies(self, input):
            return super()._conv_forward(input, weight, bias)
        return torch.ops.aten.mkldnn_convolution(input, weight, bias, self.padding, self.stride, self.dilation,
                                                 self.groups)


def use_onednn_convolutions(network: nn.Module) -> nn.Module:
    """Give every plain ``nn.Conv3d`` of ``network`` the class :class:`OneDnnConv3d`, in place; return it."""
    for module in network.modules():
        if type(module) is nn.Conv3d:
            module.__class__ = OneDnnConv3d
    return network
