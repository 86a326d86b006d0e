"""``nnunet-pruning benchmark`` through the real CLI: two smoke trainers x two folds, then a resumed rerun."""

import csv
import json
import os
import subprocess

import pytest

from nnunet_pruning.app.workspace import NnUNetWorkspace

pytestmark = pytest.mark.e2e

STOCK, FLAT = "nnUNetTrainerStock_smoke", "nnUNetTrainerFlatUNet16_smoke"


def _benchmark(out):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return subprocess.run([NnUNetWorkspace.executable("nnunet-pruning"), "benchmark", "--output", str(out),
                           "--trainers", STOCK, FLAT, "--folds", "0", "1", "--size", "16", "--train", "6", "--test",
                           "2", "--no-time"], env=env, capture_output=True, text=True, timeout=1500)


def test_benchmark_reports_mean_sd_and_paired_differences_and_resumes(tmp_path):
    out = tmp_path / "bench"
    result = _benchmark(out)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    progress = [line for line in result.stdout.splitlines() if line.startswith("[benchmark ")]
    assert any(f"training {FLAT} fold 1" in line for line in progress) and "done" in progress[-1]
    results = json.loads((out / "results.json").read_text())
    runs = results["runs"]
    assert sorted((r["trainer"], r["fold"]) for r in runs) == sorted((t, f) for t in (STOCK, FLAT) for f in "01")
    for run in runs:  # every Dice is nnU-Net's own evaluation of that run's predictions
        summary = json.loads((out / "predictions" / run["trainer"] / f"fold_{run['fold']}" / "summary.json")
                             .read_text())
        assert run["test_dice"] == summary["foreground_mean"]["Dice"]
    flat = results["summary"][1]
    diffs = {r["fold"]: r["test_dice"] for r in runs if r["trainer"] == FLAT}
    base = {r["fold"]: r["test_dice"] for r in runs if r["trainer"] == STOCK}
    assert flat["paired_difference"]["mean"] == pytest.approx(sum(diffs[f] - base[f] for f in "01") / 2)
    report = (out / "report.md").read_text()
    assert "test Dice mean +- sd" in report and "paired diff to baseline (95% CI)" in report
    assert f"{flat['dice_mean']:.3f} +- {flat['dice_sd']:.3f}" in report
    assert len(list(csv.DictReader(open(out / "runs.csv")))) == 4 and (out / "dice.png").is_file()

    log = (out / "commands.log").read_text()
    again = _benchmark(out)  # resumable: nothing is trained or predicted again
    assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
    assert (out / "commands.log").read_text() == log
    assert json.loads((out / "results.json").read_text())["runs"] == runs
