"""Fixtures of the trainer tests (trainers built in-process on fake plans: tests/trainers/fake_task.py)."""

import pytest

from tests.trainers.fake_task import make_plans, prepare_folders


@pytest.fixture
def task(tmp_path, monkeypatch):
    """A 3-stage 3D plain task prepared under ``tmp_path`` (nnU-Net's path variables point there for the test):
    ``(tmp_path, plans)``."""
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, "")
    plans = make_plans("plain", dim=3, n_stages=3)
    prepare_folders(tmp_path, plans)
    return tmp_path, plans
