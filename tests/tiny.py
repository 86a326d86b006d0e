"""Tiny nnU-Net-style U-Nets for fast structural tests: the parameter table every engine test uses."""

from __future__ import annotations

import itertools

import torch

from nnunet_pruning.adapter.architectures import build_unet, unet_spec

ARCHITECTURES = ("plain", "resenc")
DIMS = (2, 3)
STAGES = (3, 4, 5, 6)
DEEP_SUPERVISION = (False, True)

#: (architecture, dim, n_stages, deep_supervision) for every combination the engine must handle
MATRIX = list(itertools.product(ARCHITECTURES, DIMS, STAGES, DEEP_SUPERVISION))
MATRIX_IDS = [f"{a}-{d}d-{n}st-{'ds' if s else 'nods'}" for a, d, n, s in MATRIX]


def _strides(dim: int, n_stages: int) -> list[list[int]]:
    """2D: stride 2 everywhere. 3D: each stage pools two of the three axes in turn (anisotropic, as
    nnU-Net plans often are), so even 6 stages start from at most 16x16x16 voxels."""
    if dim == 2:
        return [[1, 1]] + [[2, 2] for _ in range(1, n_stages)]
    strides = [[1, 1, 1]]
    for s in range(1, n_stages):
        stride = [2, 2, 2]
        stride[(s + 1) % 3] = 1
        strides.append(stride)
    return strides


def tiny_spec(architecture: str, dim: int, n_stages: int, norm: str = "instance"):
    """Widths 4..16 (doubling, capped); the bottleneck is 2 voxels along every axis."""
    strides = _strides(dim, n_stages)
    return unet_spec(architecture, dim, n_stages, base_width=4, max_width=16, strides=strides, norm=norm)


def tiny_input_shape(dim: int, n_stages: int, batch: int = 2, channels: int = 2) -> tuple[int, ...]:
    pooled = [sum(stride[axis] == 2 for stride in _strides(dim, n_stages)) for axis in range(dim)]
    return (batch, channels, *(2 * 2 ** p for p in pooled))


def tiny_net(architecture="plain", dim=2, n_stages=3, deep_supervision=False, seed=0, norm="instance",
             dtype=torch.float64):
    """A tiny U-Net with He-initialised convs and *randomised* norm affine parameters: nnU-Net zeroes the
    last norm of every residual block at init, which would hide errors behind exact zeros."""
    torch.manual_seed(seed)
    net = build_unet(tiny_spec(architecture, dim, n_stages, norm), input_channels=2, num_classes=3,
                     deep_supervision=deep_supervision)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.modules.batchnorm._NormBase) and module.weight is not None:
                module.weight.copy_(1 + 0.2 * torch.randn_like(module.weight))
                module.bias.copy_(0.2 * torch.randn_like(module.bias))
    return net.to(dtype)


def tiny_input(dim, n_stages, seed=1, dtype=torch.float64, batch=2):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(tiny_input_shape(dim, n_stages, batch=batch), generator=generator, dtype=dtype)


def outputs(net, x) -> list[torch.Tensor]:
    """All outputs of a forward pass as a list (one per deep-supervision level)."""
    with torch.no_grad():
        out = net(x)
    return list(out) if isinstance(out, (list, tuple)) else [out]


def max_difference(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    assert len(a) == len(b)
    return max(float((x - y).abs().max()) for x, y in zip(a, b))
