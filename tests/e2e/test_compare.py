"""``nnunet-pruning compare`` on tiny models trained in the test with the real CLIs: its numbers must be
``count``'s and nnU-Net's ``summary.json``'s. (Its refusals -- models of different datasets, a model without its
validation, a missing fold -- are rows of tests/e2e/test_misuse.py.)"""

import csv
import json
import os

import pytest

from .conftest import DATASET_ID, FLAT_TRAINER, background_job, shared

pytestmark = pytest.mark.e2e

STOCK, STAMP = "nnUNetTrainerStock_smoke", "nnUNetTrainerSTAMP_smoke"


@background_job("test_numbers_match_count_and_summary", "test_inference_timed_side_by_side", "test_plots_written")
def _commands(trainings, folder) -> dict:
    """compare with timing on three models (in the background)."""
    for trainer in (STOCK, FLAT_TRAINER, STAMP):
        shared(trainings, trainer)
    ws = trainings.pipeline.ws
    out = str(folder / "compare")
    return {"out": out, "output": ws.run(
        "nnunet-pruning", "compare", STOCK, FLAT_TRAINER, STAMP, "-d", str(DATASET_ID), "-c", "3d_fullres", "-f", "0",
        "-o", out, "--time", "--max-cases", "1", "--repeats", "2", "--warmup", "1", "--threads", "1")}


@pytest.fixture(scope="module")
def compared(planned_dataset, trainings):
    runs = trainings.job("test_numbers_match_count_and_summary")
    return planned_dataset, runs["out"], runs["output"]


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
