"""Flat U-Net: the planned U-Net with the same number of filters in every stage, and flat plans files."""

from __future__ import annotations

import copy
import json
import os

from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.files import write_json

__all__ = ["MAX_FLAT_WIDTH", "SUPPORTED_ARCHITECTURES", "architecture_short_name", "require_supported_architecture",
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


#: nnU-Net's own plans stop at 320 (3D) and 512 (2D) filters; wider stages exhaust memory, not add accuracy
MAX_FLAT_WIDTH = 1024


def _check_width(width) -> int:
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= MAX_FLAT_WIDTH:
        raise PruningError(f"width must be a whole number from 1 to {MAX_FLAT_WIDTH}, not {width!r}; e.g. --width 32")
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
    if source_plans.endswith(".json"):  # a file name given where the plans name is asked for
        source_plans = source_plans[:-len(".json")]
    if os.sep in source_plans:
        raise PruningError(f"--plans takes a plans name such as nnUNetPlans, not a path ({source_plans}); the "
                           f"plans are read from {preprocessed_dataset_folder}")
    source = os.path.join(preprocessed_dataset_folder, source_plans + ".json")
    if not os.path.isfile(source):
        raise PruningError(f"plans {source} not found; run nnUNetv2_plan_and_preprocess for this dataset first "
                           f"or pass the right --plans name")
    with open(source) as f:
        plans = json.load(f)
    flat = make_flat_plans(plans, width)
    target = os.path.join(preprocessed_dataset_folder, flat["plans_name"] + ".json")
    write_json(flat, target, indent=4)
    return target
