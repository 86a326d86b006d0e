"""Input checks of the inference timing (the timing itself runs in tests/e2e/test_compare.py)."""

import pytest

from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.app.timing import TimingSettings, case_files

DATASET_JSON = {"file_ending": ".nii.gz", "channel_names": {"0": "CT", "1": "MR"}}


@pytest.mark.parametrize("kwargs", [{"tile_step_size": 0}, {"tile_step_size": 1.5}, {"repeats": 0},
                                    {"warmup": -1}, {"threads": 0}, {"compile": "jit"}])
def test_bad_settings(kwargs):
    with pytest.raises(PruningError):
        TimingSettings(**kwargs).validate()


def test_cases_grouped_by_channel(tmp_path):
    for case in ("b", "a"):
        for channel in (0, 1):
            (tmp_path / f"{case}_{channel:04d}.nii.gz").write_bytes(b"")
    cases = case_files(str(tmp_path), DATASET_JSON)
    assert [c for c, _ in cases] == ["a", "b"] and all(len(files) == 2 for _, files in cases)
    assert len(case_files(str(tmp_path), DATASET_JSON, max_cases=1)) == 1


def test_missing_channel_and_empty_folder(tmp_path):
    with pytest.raises(PruningError, match="no images ending in .nii.gz"):
        case_files(str(tmp_path), DATASET_JSON)
    (tmp_path / "a_0000.nii.gz").write_bytes(b"")
    with pytest.raises(PruningError, match="has 1 channel files, the dataset has 2"):
        case_files(str(tmp_path), DATASET_JSON)
    with pytest.raises(PruningError, match="does not exist"):
        case_files(str(tmp_path / "nope"), DATASET_JSON)
