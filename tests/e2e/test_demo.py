"""``nnunet-pruning demo`` through the real CLI, with two smoke trainers instead of the four demo ones."""

import json
import os
import subprocess

import pytest

from nnunet_pruning.app.workspace import NnUNetWorkspace

pytestmark = pytest.mark.e2e

STOCK, STAMP = "nnUNetTrainerStock_smoke", "nnUNetTrainerSTAMP_smoke"


def test_demo_writes_the_report_with_progress_lines(tmp_path):
    out = tmp_path / "demo"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    result = subprocess.run([NnUNetWorkspace.executable("nnunet-pruning"), "demo", "--output", str(out),
                             "--trainers", STOCK, STAMP], env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    progress = [line for line in result.stdout.splitlines() if line.startswith("[demo ")]
    for step in ("planned and preprocessed", f"training {STOCK}", f"{STAMP}: test Dice", "[compare] timing",
                 "done in"):
        assert any(step in line for line in progress), step
    report = (out / "report.md").read_text()
    assert "`nnUNetTrainerStock_smoke` trains 1 epoch x 2 iterations" in report  # the budget, from the classes
    assert "That is NOT clearly above chance" in report  # 2 iterations learn nothing, and the report says so
    test_dice = json.loads((out / "demo_test_dice.json").read_text())
    assert [m["trainer"] for m in test_dice["models"]] == [STOCK, STAMP]
    for model in test_dice["models"]:
        assert f"| {model['trainer']} | `{model['trainer']}` | {model['test_dice']:.3f} |" in report
    summary = json.loads((out / "predictions" / STAMP / "summary.json").read_text())
    assert test_dice["models"][1]["test_dice"] == summary["foreground_mean"]["Dice"]
    for name in ("results.csv", "results.json", "dice_vs_params.png", "dice_vs_gflops.png", "widths.png",
                 "pruning_trajectories.png", "commands.log"):
        assert (out / name).is_file(), name
    assert "$ nnUNetv2_train 900 3d_fullres 0 -tr nnUNetTrainerSTAMP_smoke -device cpu" in \
        (out / "commands.log").read_text()
