"""Fixtures for end-to-end tests: a throw-away nnU-Net environment driven through the real CLIs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nnunet_pruning.environment import ext_trainer_folder

BIN = os.path.dirname(sys.executable)  # the venv's console scripts live beside its python
DATASET_ID = 951


class NnUNetEnv:
    """Paths and environment of one isolated nnU-Net installation (raw, preprocessed, results)."""

    def __init__(self, root):
        self.root = root
        self.raw, self.preprocessed, self.results = (os.path.join(root, n) for n in
                                                     ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"))
        for folder in (self.raw, self.preprocessed, self.results):
            os.makedirs(folder, exist_ok=True)
        self.env = dict(os.environ, nnUNet_raw=self.raw, nnUNet_preprocessed=self.preprocessed,
                        nnUNet_results=self.results, nnUNet_extTrainer=ext_trainer_folder(),
                        nnUNet_n_proc_DA="0", nnUNet_def_n_proc="1", nnUNet_compile="false",
                        OMP_NUM_THREADS="2", PYTHONWARNINGS="ignore")

    def run(self, *command: str, timeout: int = 900, extra_env: dict | None = None) -> str:
        """Run a console script of the venv; fail the test with its output when it fails."""
        executable = os.path.join(BIN, command[0])
        env = dict(self.env, **(extra_env or {}))
        result = subprocess.run([executable, *command[1:]], env=env, capture_output=True, text=True,
                                timeout=timeout, cwd=self.root)
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{' '.join(command)} failed ({result.returncode}):\n{output[-4000:]}"
        return output

    def model_folder(self, trainer: str, plans: str = "nnUNetPlans", configuration: str = "3d_fullres") -> str:
        return os.path.join(self.results, self.dataset_name, f"{trainer}__{plans}__{configuration}")

    @property
    def dataset_name(self) -> str:
        return f"Dataset{DATASET_ID:03d}_E2E"

    @property
    def raw_dataset(self) -> str:
        return os.path.join(self.raw, self.dataset_name)


@pytest.fixture(scope="session")
def planned_dataset(tmp_path_factory) -> NnUNetEnv:
    """A tiny 3D synthetic dataset, made, planned and preprocessed with the real CLIs (once per session)."""
    env = NnUNetEnv(str(tmp_path_factory.mktemp("nnunet")))
    env.run("nnunet-pruning", "make-dataset", "--id", str(DATASET_ID), "--name", "E2E", "--train", "6",
            "--test", "2", "--size", "32", "--seed", "3")
    # nnU-Net's planner calls torch.set_num_threads(nnUNet_n_proc_DA): it must be >= 1 here.
    env.run("nnUNetv2_plan_and_preprocess", "-d", str(DATASET_ID), "-c", "3d_fullres", "-np", "1", "-npfp", "1",
            "--verify_dataset_integrity", extra_env={"nnUNet_n_proc_DA": "1"})
    return env
