"""nnU-Net's dataset naming rule, ``DatasetXXX_Name``, in one place.

nnU-Net finds a dataset by the prefix ``Dataset`` + its id with three digits + ``_`` in ``nnUNet_raw``,
``nnUNet_preprocessed`` and ``nnUNet_results``.
"""

from __future__ import annotations

import os
import re

from nnunet_pruning.core.errors import PruningError

__all__ = ["dataset_prefix", "dataset_folder_name", "dataset_id", "folders_with_id", "matches_dataset",
           "resolve_dataset_folder"]


def dataset_prefix(dataset_id: int) -> str:
    """``Dataset004_`` for id 4."""
    return f"Dataset{int(dataset_id):03d}_"


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """``Dataset004_Hippocampus`` for id 4 and name ``Hippocampus``."""
    return dataset_prefix(dataset_id) + name


def dataset_id(dataset: str) -> int:
    """The id of a dataset named by id (``4``, ``004``) or name (``Dataset004_Hippocampus``)."""
    match = re.fullmatch(r"(?:Dataset)?(\d{1,3})(?:_.*)?", dataset)
    if not match or not 1 <= int(match.group(1)) <= 999:
        raise PruningError(f"dataset {dataset!r} is neither an id (1-999) nor a DatasetXXX_Name; pass e.g. 4 or "
                           f"Dataset004_Hippocampus")
    return int(match.group(1))


def folders_with_id(root: str, dataset_id: int) -> list[str]:
    """The folders of ``root`` whose name carries this dataset id (sorted; none if ``root`` is missing)."""
    if not os.path.isdir(root):
        return []
    prefix = dataset_prefix(dataset_id)
    return sorted(d for d in os.listdir(root) if d.startswith(prefix) and os.path.isdir(os.path.join(root, d)))


def matches_dataset(dataset_name: str, dataset: str) -> bool:
    """Whether ``DatasetXXX_Name`` is the dataset a user named by id (``4``, ``004``) or by full name."""
    if dataset.isdigit():
        return dataset_name.startswith(dataset_prefix(int(dataset)))
    return dataset_name.startswith(dataset)


def resolve_dataset_folder(dataset: str, root_variable: str = "nnUNet_preprocessed") -> str:
    """``$root/DatasetXXX_Name`` for a dataset id (``4``, ``004``) or full name."""
    from nnunet_pruning.adapter.environment import require_path_variable

    root = require_path_variable(root_variable)
    if dataset.startswith("Dataset"):
        prefix = dataset
    elif dataset.isdigit():
        prefix = dataset_prefix(int(dataset))
    else:
        raise PruningError(f"dataset {dataset!r} is neither an id nor a DatasetXXX_Name; pass e.g. 4 or "
                           f"Dataset004_Hippocampus")
    matches = sorted(d for d in os.listdir(root) if (d == prefix or d.startswith(prefix))
                     and os.path.isdir(os.path.join(root, d)))
    if not matches:
        raise PruningError(f"unknown dataset {dataset}: nothing in {root_variable}={root} matches; run "
                           f"nnUNetv2_plan_and_preprocess -d {dataset} first or check the id")
    if len(matches) > 1:
        raise PruningError(f"dataset {dataset} is ambiguous in {root}: {', '.join(matches)}; pass the full name")
    return os.path.join(root, matches[0])
