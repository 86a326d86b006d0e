"""Flat U-Net: the planned U-Net with the same number of filters in every stage, and flat plans files."""

from __future__ import annotations

import copy
import json
import os

from nnunet_pruning.core.errors import PruningError

__all__ = ["SUPPORTED_ARCHITECTURES", "architecture_short_name", "require_supported_architecture",
           "flat_arch_kwargs", "flat_plans_name", "make_flat_plans", "write_flat_plans"]

SUPPORTED_ARCHITECTURES = ("PlainConvUNet", "ResidualEncoderUNet")


def architecture_short_name(class_name: str) -> str:
    return class_name.rsplit(".", 1)[-1]


def require_supported_architecture(class_name: str) -> str:
    short = architecture_short_name(class_name)
    if short not in SUPPORTED_ARCHITECTURES:
        raise PruningError(f"architecture {class_name} is not a U-Net nnunet_pruning supports; use plans whose "
                           f"network_class_name is one of {', '.join(SUPPORTED_ARCHITECTURES)}")
    return short


def _check_width(width) -> int:
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise PruningError(f"width must be a whole number >= 1, not {width!r}; e.g. --width 32")
    return width


def flat_arch_kwargs(class_name: str, arch_kwargs: dict, width: int | None = None) -> dict:
    """A copy of ``arch_kwargs`` with every stage at ``width`` filters (default: the stage-0 width)."""
    require_supported_architecture(class_name)
    kwargs = copy.deepcopy(dict(arch_kwargs))
    n_stages = int(kwargs["n_stages"])
    features = kwargs["features_per_stage"]
    features = [features] * n_stages if isinstance(features, int) else list(features)
    width = features[0] if width is None else _check_width(width)
    kwargs["features_per_stage"] = [int(width)] * n_stages
    return kwargs


def flat_plans_name(source_plans_name: str, width: int) -> str:
    return f"{source_plans_name}Flat{width}"


def make_flat_plans(plans: dict, width: int) -> dict:
    """Flat plans from loaded plans: same data identifiers (so preprocessed data is reused)."""
    _check_width(width)
    flat = copy.deepcopy(plans)
    flat["plans_name"] = flat_plans_name(plans["plans_name"], width)
    for configuration in flat["configurations"].values():
        arch = configuration.get("architecture")
        if arch is None:  # inherits its architecture from another configuration
            continue
        arch["arch_kwargs"] = flat_arch_kwargs(arch["network_class_name"], arch["arch_kwargs"], width)
    return flat


def write_flat_plans(preprocessed_dataset_folder: str, width: int, source_plans: str = "nnUNetPlans") -> str:
    """Write ``<source_plans>Flat<width>.json`` beside the source plans and return its path."""
    _check_width(width)
    source = os.path.join(preprocessed_dataset_folder, source_plans + ".json")
    if not os.path.isfile(source):
        raise PruningError(f"plans {source} not found; run nnUNetv2_plan_and_preprocess for this dataset first "
                           f"or pass the right --plans name")
    with open(source) as f:
        plans = json.load(f)
    flat = make_flat_plans(plans, width)
    target = os.path.join(preprocessed_dataset_folder, flat["plans_name"] + ".json")
    tmp = target + ".tmp"
    with open(tmp, "w") as f:
        json.dump(flat, f, indent=4)
    os.replace(tmp, target)
    return target
