"""``nnunet-pruning compare`` on tiny models trained in the test with the real CLIs: its numbers must be
``count``'s and nnU-Net's ``summary.json``'s, and models of different datasets are refused."""

import csv
import json
import os
import shutil
import subprocess

import pytest

from .conftest import DATASET_ID, FLAT_TRAINER

pytestmark = pytest.mark.e2e

STOCK, STAMP = "nnUNetTrainerStock_smoke", "nnUNetTrainerSTAMP_smoke"


@pytest.fixture(scope="module")
def compared(trained_flat, train, tmp_path_factory):
    ws = trained_flat
    train(STOCK)
    train(STAMP)
    out = str(tmp_path_factory.mktemp("compare"))
    output = ws.run("nnunet-pruning", "compare", STOCK, FLAT_TRAINER, STAMP, "-d", str(DATASET_ID), "-c", "3d_fullres",
                    "-f", "0", "-o", out, "--time", "--max-cases", "1", "--repeats", "2", "--warmup", "1",
                    "--threads", "1")
    return ws, out, output


def test_numbers_match_count_and_summary(compared):
    ws, out, output = compared
    results = json.load(open(os.path.join(out, "results.json")))
    assert [m["trainer"] for m in results["models"]] == [STOCK, FLAT_TRAINER, STAMP]
    report = open(os.path.join(out, "report.md")).read()
    rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
    assert len(rows) == 3
    for model, row in zip(results["models"], rows):
        counted = ws.count_json(model["folder"])["networks"]["fold_0"]
        fold = model["folds"]["0"]
        assert fold["params"] == counted["params"] == int(row["params"])
        assert fold["gflops"] == pytest.approx(counted["gflops"]) == float(row["gflops"])
        assert fold["checkpoint_bytes"] == counted["checkpoint_bytes"] == int(row["checkpoint_bytes"])
        assert fold["widths"] == counted["widths"]
        summary = json.load(open(os.path.join(model["folder"], "fold_0", "validation", "summary.json")))
        assert fold["dice"] == summary["foreground_mean"]["Dice"] == pytest.approx(float(row["val_dice"]))
        assert fold["dice_per_class"] == {k: v["Dice"] for k, v in summary["mean"].items()}
        assert f"{counted['params']:,}" in report and f"{summary['foreground_mean']['Dice']:.3f}" in report
        assert f"{counted['params']:,}" in output  # the table is printed too
    stock, flat, stamp = results["models"]
    ratios = results["ratios_to_baseline"]
    expected = stock["summary"]["params"] / flat["summary"]["params"]
    assert ratios[flat["label"]]["params_ratio"] == pytest.approx(expected)
    assert stamp["folds"]["0"]["pruning_log"]["target_reached"] and stock["folds"]["0"]["pruning_log"] is None


def test_inference_timed_side_by_side(compared):
    _, out, _ = compared
    results = json.load(open(os.path.join(out, "results.json")))
    timing = results["inference"]
    assert timing["settings"]["repeats"] == 2 and timing["settings"]["use_mirroring"] is False
    assert len(timing["cases"]) == 1
    base = timing["models"][results["baseline"]]["median"]
    for model in results["models"]:
        median = model["inference"]["median"]
        assert 0 < median["network"] < median["total"]
        assert results["ratios_to_baseline"][model["label"]]["speedup_total"] == pytest.approx(
            base["total"] / median["total"])


def test_plots_written(compared):
    _, out, _ = compared
    report = open(os.path.join(out, "report.md")).read()
    for name in ("dice_vs_params.png", "dice_vs_gflops.png", "widths.png", "pruning_trajectories.png"):
        assert os.path.getsize(os.path.join(out, name)) > 5_000
        assert f"]({name})" in report


def _compare_error(ws, *args) -> str:
    result = subprocess.run([ws.executable("nnunet-pruning"), "compare", *args], env=ws.env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("nnunet-pruning: error: ")]
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]


def _snapshot(folder):
    return {os.path.join(d, f): os.path.getmtime(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs}


def test_refuses_models_of_different_datasets(compared, tmp_path):
    ws, _, _ = compared
    stock = ws.model_folder(DATASET_ID, STOCK)
    other = str(tmp_path / "other" / f"{STOCK}__nnUNetPlans__3d_fullres")
    shutil.copytree(stock, other)
    plans = json.load(open(os.path.join(other, "plans.json")))
    plans["dataset_name"] = "Dataset952_Other"
    json.dump(plans, open(os.path.join(other, "plans.json"), "w"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").write_text("an earlier report")
    before = _snapshot(stock), _snapshot(other)
    error = _compare_error(ws, stock, other, "-f", "0", "-o", str(out))
    assert "different datasets" in error and "Dataset952_Other" in error and "compare models of one dataset" in error
    assert (out / "report.md").read_text() == "an earlier report" and sorted(os.listdir(out)) == ["report.md"]
    assert (_snapshot(stock), _snapshot(other)) == before


def test_says_which_model_lacks_its_validation(compared, tmp_path):
    ws, _, _ = compared
    other = str(tmp_path / f"{FLAT_TRAINER}__nnUNetPlans__3d_fullres")
    shutil.copytree(ws.model_folder(DATASET_ID, FLAT_TRAINER), other)
    os.remove(os.path.join(other, "fold_0", "validation", "summary.json"))
    error = _compare_error(ws, ws.model_folder(DATASET_ID, STOCK), other, "-f", "0", "-o", str(tmp_path / "out"))
    assert f"model {FLAT_TRAINER} fold 0 has no validation/summary.json" in error and "--val" in error
    assert not os.path.exists(tmp_path / "out")


def test_says_which_fold_is_missing(compared, tmp_path):
    ws, _, _ = compared
    error = _compare_error(ws, STOCK, STAMP, "-d", str(DATASET_ID), "-c", "3d_fullres", "-f", "0", "4", "-o",
                           str(tmp_path / "out"))
    assert f"model {STOCK} has no checkpoint for fold 4" in error
