"""nnU-Net-style architecture descriptions without a dataset: for tests, benchmarks and examples.

They follow what nnU-Net's planners write into a plans file (``network_class_name``, ``arch_kwargs``,
``_kw_requires_import``), so a network built here is built exactly like one from real plans.
"""

from __future__ import annotations

from dataclasses import dataclass

from nnunet_pruning.core.errors import PruningError

__all__ = ["PLAIN", "RESENC", "ArchitectureSpec", "unet_spec", "build_unet"]

PLAIN = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
RESENC = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
_REQUIRES_IMPORT = ["conv_op", "norm_op", "dropout_op", "nonlin"]


@dataclass
class ArchitectureSpec:
    """The three architecture fields of an nnU-Net plans configuration (duck-types ConfigurationManager)."""

    network_arch_class_name: str
    network_arch_init_kwargs: dict
    network_arch_init_kwargs_req_import: list


def unet_spec(architecture: str = "plain", dim: int = 3, n_stages: int = 4, base_width: int = 32,
              max_width: int = 320, features: list[int] | None = None, strides: list | None = None,
              norm: str = "instance") -> ArchitectureSpec:
    """An architecture like nnU-Net's default (``plain``) or ResEnc (``resenc``) planner would write.

    Args:
        architecture: ``plain`` (PlainConvUNet) or ``resenc`` (ResidualEncoderUNet, blocks 1-3-4-6-6-6...).
        dim: 2 or 3.
        n_stages: resolution stages, the first at stride 1, then stride 2.
        base_width: stage-0 filters; each stage doubles up to ``max_width``.
        features: explicit filters per stage (overrides base/max width).
        strides: per-stage strides (default: 1, then 2 on every axis).
        norm: ``instance`` (nnU-Net's default) or ``batch`` (has running statistics).
    """
    if architecture not in ("plain", "resenc"):
        raise PruningError(f"architecture must be 'plain' or 'resenc', not {architecture!r}")
    features = features or [min(max_width, base_width * 2 ** i) for i in range(n_stages)]
    kernel = [3] * dim
    kwargs = {
        "n_stages": n_stages,
        "features_per_stage": list(features),
        "conv_op": f"torch.nn.modules.conv.Conv{dim}d",
        "kernel_sizes": [list(kernel) for _ in range(n_stages)],
        "strides": strides or [[1] * dim] + [[2] * dim for _ in range(n_stages - 1)],
        "n_conv_per_stage_decoder": [2 if architecture == "plain" else 1] * (n_stages - 1),
        "conv_bias": True,
        "norm_op": f"torch.nn.modules.instancenorm.InstanceNorm{dim}d" if norm == "instance" else
                   f"torch.nn.modules.batchnorm.BatchNorm{dim}d",
        "norm_op_kwargs": {"eps": 1e-05, "affine": True},
        "dropout_op": None,
        "dropout_op_kwargs": None,
        "nonlin": "torch.nn.LeakyReLU",
        "nonlin_kwargs": {"inplace": True},
    }
    if architecture == "plain":
        kwargs["n_conv_per_stage"] = [2] * n_stages
        class_name = PLAIN
    else:
        kwargs["n_blocks_per_stage"] = ([1, 3, 4, 6, 6, 6, 6, 6] * 2)[:n_stages]
        class_name = RESENC
    return ArchitectureSpec(class_name, kwargs, list(_REQUIRES_IMPORT))


def build_unet(spec: ArchitectureSpec, input_channels: int = 1, num_classes: int = 3,
               deep_supervision: bool = False):
    """Build the network with nnU-Net's own ``get_network_from_plans`` (He init, as in training)."""
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    return get_network_from_plans(spec.network_arch_class_name, spec.network_arch_init_kwargs,
                                  spec.network_arch_init_kwargs_req_import, input_channels, num_classes,
                                  allow_init=True, deep_supervision=deep_supervision)
