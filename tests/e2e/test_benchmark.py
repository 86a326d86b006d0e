"""``nnunet-pruning benchmark -d`` through the real CLI on the session's dataset: two smoke trainers x two folds
(the shared models are reused, stock's fold 1 is trained here), then a resumed rerun."""

import csv
import json
import subprocess

import pytest

from .conftest import DATASET_ID, RANDOM_LARGEST as PRUNED, STOCK

pytestmark = pytest.mark.e2e


def _benchmark(ws, out):
    return subprocess.run([ws.executable("nnunet-pruning"), "benchmark", "-d", str(DATASET_ID), "--output", str(out),
                           "--trainers", STOCK, PRUNED, "--folds", "0", "1", "--no-time", "--threads", "1"],
                          env=ws.env, capture_output=True, text=True, timeout=1500)


def test_benchmark_reports_mean_sd_and_paired_differences_and_resumes(planned_dataset, train, tmp_path):
    ws = planned_dataset
    for fold in (0, 1):
        train(PRUNED, fold)
    train(STOCK, 0)
    out = tmp_path / "bench"
    result = _benchmark(ws, out)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    progress = [line for line in result.stdout.splitlines() if line.startswith("[benchmark ")]
    assert any(f"training {STOCK} fold 1" in line for line in progress) and "done" in progress[-1]
    assert not any("fold 0 ..." in line or PRUNED + " fold 1 ..." in line for line in progress)  # reused
    results = json.loads((out / "results.json").read_text())
    runs = results["runs"]
    assert sorted((r["trainer"], r["fold"]) for r in runs) == sorted((t, f) for t in (STOCK, PRUNED) for f in "01")
    for run in runs:  # every Dice is nnU-Net's own evaluation of that run's predictions
        summary = json.loads((out / "predictions" / run["trainer"] / f"fold_{run['fold']}" / "summary.json")
                             .read_text())
        assert run["test_dice"] == summary["foreground_mean"]["Dice"]
    pruned = results["summary"][1]
    diffs = {r["fold"]: r["test_dice"] for r in runs if r["trainer"] == PRUNED}
    base = {r["fold"]: r["test_dice"] for r in runs if r["trainer"] == STOCK}
    assert pruned["paired_difference"]["mean"] == pytest.approx(sum(diffs[f] - base[f] for f in "01") / 2)
    assert results["setup"]["dataset"] == ws.dataset_name(DATASET_ID) and results["setup"]["cases"]["test"] == 2
    report = (out / "report.md").read_text()
    assert "test Dice mean +- sd" in report and "paired diff to baseline (95% CI)" in report
    assert f"{pruned['dice_mean']:.3f} +- {pruned['dice_sd']:.3f}" in report
    assert all(r["target_reached"] for r in runs if r["trainer"] == PRUNED)
    assert len(list(csv.DictReader(open(out / "runs.csv")))) == 4 and (out / "dice.png").is_file()

    log = (out / "commands.log").read_text()
    assert f"$ nnUNetv2_train {DATASET_ID} 3d_fullres 1 -tr {STOCK}" in log
    again = _benchmark(ws, out)  # resumable: nothing is trained or predicted again
    assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
    assert (out / "commands.log").read_text() == log
    assert json.loads((out / "results.json").read_text())["runs"] == runs
