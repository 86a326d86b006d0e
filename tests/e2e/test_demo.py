"""``nnunet-pruning demo -d`` through the real CLI on the session's dataset, with two smoke trainers instead of
the four demo ones (their fold 0 is the session's shared model: the demo reuses a trained fold)."""

import json
import subprocess

import pytest

from .conftest import DATASET_ID

pytestmark = pytest.mark.e2e

STOCK, STAMP = "nnUNetTrainerStock_smoke", "nnUNetTrainerSTAMP_smoke"


def test_demo_writes_the_report_with_progress_lines(planned_dataset, train, tmp_path):
    ws = planned_dataset
    train(STOCK)
    train(STAMP)
    out = tmp_path / "demo"
    result = subprocess.run([ws.executable("nnunet-pruning"), "demo", "-d", str(DATASET_ID), "--output", str(out),
                             "--trainers", STOCK, STAMP], env=ws.env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    progress = [line for line in result.stdout.splitlines() if line.startswith("[demo ")]
    for step in ("planned and preprocessed", f"predicting and evaluating {STAMP} fold 0", f"{STAMP}: test Dice",
                 "[compare] timing", "done in"):
        assert any(step in line for line in progress), step
    report = (out / "report.md").read_text()
    assert "`nnUNetTrainerStock_smoke` trains 1 epoch x 2 iterations" in report  # the budget, from the classes
    assert "That is NOT clearly above chance" in report  # 2 iterations learn nothing, and the report says so
    assert f"Synthetic dataset {ws.dataset_name(DATASET_ID)} (5 training / 2 test cases, 16x16x16" in report
    test_dice = json.loads((out / "demo_test_dice.json").read_text())
    assert [m["trainer"] for m in test_dice["models"]] == [STOCK, STAMP]
    for model in test_dice["models"]:
        assert f"| {model['trainer']} | `{model['trainer']}` | {model['test_dice']:.3f} |" in report
    summary = json.loads((out / "predictions" / STAMP / "fold_0" / "summary.json").read_text())
    assert test_dice["models"][1]["test_dice"] == summary["foreground_mean"]["Dice"]
    for name in ("results.csv", "results.json", "dice_vs_params.png", "dice_vs_gflops.png", "widths.png",
                 "pruning_trajectories.png", "commands.log"):
        assert (out / name).is_file(), name
    assert f"$ nnUNetv2_predict -i {ws.raw_dataset}/imagesTs -o {out}/predictions/{STAMP}/fold_0 -d {DATASET_ID}" \
        in (out / "commands.log").read_text()
