"""Fixtures for end-to-end tests: a throw-away nnU-Net workspace driven through the real CLIs."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from nnunet_pruning.app.workspace import NnUNetWorkspace

DATASET_ID = 951


class E2EWorkspace(NnUNetWorkspace):
    """A workspace whose failing commands fail the test with their output."""

    def run(self, *command, **kwargs) -> str:
        try:
            return super().run(*command, **kwargs)
        except RuntimeError as e:
            pytest.fail(str(e), pytrace=False)

    def count_json(self, *args) -> dict:
        """``nnunet-pruning count ... --json``; stdout must be pure JSON."""
        result = subprocess.run([self.executable("nnunet-pruning"), "count", *args, "--json"], env=self.env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout)

    @property
    def raw_dataset(self) -> str:
        return f"{self.raw}/{self.dataset_name(DATASET_ID)}"


@pytest.fixture(scope="session")
def planned_dataset(tmp_path_factory) -> E2EWorkspace:
    """A tiny 3D synthetic dataset, made, planned and preprocessed with the real CLIs (once per session)."""
    ws = E2EWorkspace(str(tmp_path_factory.mktemp("nnunet")), threads=1)
    ws.run("nnunet-pruning", "make-dataset", "--id", str(DATASET_ID), "--name", "E2E", "--train", "6",
           "--test", "2", "--size", "32", "--seed", "3")
    # nnU-Net's planner calls torch.set_num_threads(nnUNet_n_proc_DA): it must be >= 1 here.
    ws.run("nnUNetv2_plan_and_preprocess", "-d", str(DATASET_ID), "-c", "3d_fullres", "-np", "1", "-npfp", "1",
           "--verify_dataset_integrity", extra_env={"nnUNet_n_proc_DA": "1"})
    return ws


FLAT_TRAINER = "nnUNetTrainerFlatUNet16_smoke"


@pytest.fixture(scope="session")
def trained_flat(planned_dataset) -> E2EWorkspace:
    """Fold 0 of a Flat-16 U-Net trained for 2 iterations with the real nnUNetv2_train."""
    planned_dataset.run("nnUNetv2_train", str(DATASET_ID), "3d_fullres", "0", "-tr", FLAT_TRAINER, "-device", "cpu")
    return planned_dataset


_trained = {}


@pytest.fixture(scope="session")
def train(planned_dataset):
    """train(trainer, fold, *extra) runs nnUNetv2_train once per session and returns the fold folder."""
    ws = planned_dataset

    def run(trainer, fold=0, *extra):
        key = (trainer, fold, extra)
        if key not in _trained:
            ws.run("nnUNetv2_train", str(DATASET_ID), "3d_fullres", str(fold), "-tr", trainer, "-device", "cpu",
                   *extra)
            _trained[key] = os.path.join(ws.model_folder(DATASET_ID, trainer), f"fold_{fold}")
        return _trained[key]
    return run
