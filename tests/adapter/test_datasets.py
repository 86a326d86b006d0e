"""nnU-Net's DatasetXXX_Name rule in one place."""

import pytest

from nnunet_pruning.adapter.datasets import (dataset_folder_name, dataset_prefix, folders_with_id, matches_dataset,
                                             resolve_dataset_folder)
from nnunet_pruning.core.errors import PruningError


def test_names():
    assert dataset_prefix(4) == "Dataset004_" and dataset_folder_name(4, "Hip") == "Dataset004_Hip"


def test_folders_with_id(tmp_path):
    for name in ("Dataset004_A", "Dataset004_B", "Dataset040_C"):
        (tmp_path / name).mkdir()
    (tmp_path / "Dataset004_file").write_text("")
    assert folders_with_id(str(tmp_path), 4) == ["Dataset004_A", "Dataset004_B"]
    assert folders_with_id(str(tmp_path / "missing"), 4) == []


@pytest.mark.parametrize("name, dataset, expected", [
    ("Dataset004_A", "4", True), ("Dataset004_A", "004", True), ("Dataset004_A", "40", False),
    ("Dataset004_A", "Dataset004_A", True), ("Dataset004_A", "Dataset004_B", False)])
def test_matches_dataset(name, dataset, expected):
    assert matches_dataset(name, dataset) is expected


def test_resolve(tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path))
    (tmp_path / "Dataset004_A").mkdir()
    assert resolve_dataset_folder("4").endswith("Dataset004_A")
    (tmp_path / "Dataset004_B").mkdir()
    with pytest.raises(PruningError, match="ambiguous"):
        resolve_dataset_folder("4")
    with pytest.raises(PruningError, match="neither an id nor a DatasetXXX_Name"):
        resolve_dataset_folder("four")
