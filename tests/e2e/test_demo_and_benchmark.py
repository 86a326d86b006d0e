"""``nnunet-pruning demo -d`` and then ``benchmark -d`` into the same output folder, through the real CLI, on the
session's dataset: the demo predicts, scores and compares fold 0 of two smoke trainers (the session's shared
models); the benchmark reuses those runs (the pipeline keeps every finished step), trains stock's fold 1, and
reports mean, sd and paired differences over folds 0 and 1; run again, it changes nothing.

Both run as rows of the interruption table (issue 23): killed at three points each, by SIGINT (Ctrl-C to the
process group) or SIGKILL (a crash), alternating, run again until they end, and what they end with is checked below as
for an uninterrupted run (a prediction of a model trained before is the uninterrupted one, to the last digit)."""

import csv
import json
import re
import signal

import pytest

from .conftest import DATASET_ID, RANDOM_LARGEST as PRUNED, STOCK, background_job, shared
from .interrupt import interrupt_and_resume, run_once

pytestmark = pytest.mark.e2e

#: (pattern of a progress line, seconds after it, signal): where and how the demo and the benchmark are killed
#: (while nnU-Net's command of that step starts: the step is redone whole after both signals); every point once,
#: Ctrl-C and a crash alternating, so that each command meets both and each step one of them
DEMO_POINTS = [(re.escape(f"predicting and evaluating {STOCK} fold 0"), 0.5, signal.SIGINT),
               (re.escape(f"predicting and evaluating {PRUNED} fold 0"), 0.5, signal.SIGKILL),
               ("comparing the models", 0.5, signal.SIGINT)]
BENCHMARK_POINTS = [(re.escape(f"training {STOCK} fold 1"), 0.5, signal.SIGKILL),
                    (re.escape(f"predicting and evaluating {STOCK} fold 1"), 0.5, signal.SIGINT),
                    (re.escape(f"predicting and evaluating {PRUNED} fold 1"), 0.5, signal.SIGKILL)]


def _benchmark_argv(ws, out):
    return [ws.executable("nnunet-pruning"), "benchmark", "-d", str(DATASET_ID), "--output", str(out), "--trainers",
            STOCK, PRUNED, "--folds", "0", "1", "--no-time", "--threads", "1", "-c", "3d_fullres", "--device", "cpu"]


def _completed(log: str, command: str) -> int:
    """How many runs of ``command`` in a commands.log ended (exit 0); interrupted ones say so, killed ones are absent."""
    entries = ("\n" + log).split("\n$ ")[1:]
    return sum(1 for e in entries if e.startswith(command + " ") and e.rstrip().endswith("exit 0]"))


@background_job("test_demo_then_benchmark_reuse_every_finished_run", order=-3)
def _commands(trainings, folder) -> dict:
    """demo, benchmark (each interrupted, then resumed), benchmark again, into one output folder (in the
    background, after the shared models); and one uninterrupted prediction to compare with."""
    for trainer, fold in ((PRUNED, 0), (PRUNED, 1), (STOCK, 0)):
        shared(trainings, trainer, fold)
    ws, out = trainings.pipeline.ws, folder / "out"
    demo = [ws.executable("nnunet-pruning"), "demo", "-d", str(DATASET_ID), "--output", str(out), "--trainers",
            STOCK, PRUNED]
    runs = {"out": out, "demo_table": interrupt_and_resume(demo, ws.env, ws.root, DEMO_POINTS)}
    runs["demo"] = runs["demo_table"].final
    if runs["demo"].returncode == 0:
        runs["demo_files"] = {name: (out / name).is_file() for name in (
            "results.csv", "results.json", "dice_vs_params.png", "dice_vs_gflops.png", "widths.png",
            "pruning_trajectories.png", "commands.log", "report.md", "demo_test_dice.json")}
        runs["demo_report"] = (out / "report.md").read_text()
        runs["demo_test_dice"] = json.loads((out / "demo_test_dice.json").read_text())
        runs["demo_log"] = (out / "commands.log").read_text()
        runs["benchmark_table"] = interrupt_and_resume(_benchmark_argv(ws, out), ws.env, ws.root, BENCHMARK_POINTS)
        runs["benchmark"] = runs["benchmark_table"].final
        runs["benchmark_log"] = (out / "commands.log").read_text()
        runs["again"] = run_once(_benchmark_argv(ws, out), ws.env, ws.root)
    reference = folder / "uninterrupted"
    ws.run("nnUNetv2_predict", "-i", f"{ws.raw_dataset}/imagesTs", "-o", str(reference), "-d", str(DATASET_ID), "-c",
           "3d_fullres", "-tr", STOCK, "-f", "0", "-device", "cpu", "--disable_tta", "-npp", "0", "-nps", "0")
    ws.run("nnUNetv2_evaluate_folder", f"{ws.raw_dataset}/labelsTs", str(reference), "-djfile",
           f"{ws.model_folder(DATASET_ID, STOCK)}/dataset.json", "-pfile", f"{ws.model_folder(DATASET_ID, STOCK)}/plans.json")
    runs["uninterrupted_stock_dice"] = json.loads((reference / "summary.json").read_text())["foreground_mean"]["Dice"]
    return runs


def test_demo_then_benchmark_reuse_every_finished_run(planned_dataset, trainings):
    ws = planned_dataset
    runs = trainings.job("test_demo_then_benchmark_reuse_every_finished_run")
    out, result = runs["out"], runs["demo"]
    assert runs["demo_table"].problems() == []
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    progress = [line for line in result.stdout.splitlines() if line.startswith("[demo ")]
    for step in ("planned and preprocessed", f"{PRUNED}: test Dice", "[compare] timing", "done in"):
        assert any(step in line for line in progress), step
    # the predictions were made by the attempts before (and not again by the last)
    assert f"predicting and evaluating {PRUNED} fold 0" in "".join(a.stdout for a in runs["demo_table"].attempts[:-1])
    assert f"predicting and evaluating {PRUNED} fold 0" not in result.stdout
    assert not any(" ..." in line and "training" in line for line in progress)  # the trained folds are reused
    report = runs["demo_report"]
    assert f"`{STOCK}` trains 1 epoch x 2 iterations" in report  # the budget, from the classes
    assert "That is NOT clearly above chance" in report  # 2 iterations learn nothing, and the report says so
    assert f"Synthetic dataset {ws.dataset_name(DATASET_ID)} (5 training / 2 test cases, 16x16x16" in report
    test_dice = runs["demo_test_dice"]
    assert [m["trainer"] for m in test_dice["models"]] == [STOCK, PRUNED]
    for model in test_dice["models"]:
        assert f"| {model['trainer']} | `{model['trainer']}` | {model['test_dice']:.3f} |" in report
    summary = json.loads((out / "predictions" / PRUNED / "fold_0" / "summary.json").read_text())
    assert test_dice["models"][1]["test_dice"] == summary["foreground_mean"]["Dice"]
    assert all(runs["demo_files"].values()), runs["demo_files"]
    log = runs["demo_log"]
    assert f"$ nnUNetv2_predict -i {ws.raw_dataset}/imagesTs -o {out}/predictions/{PRUNED}/fold_0 -d {DATASET_ID}" in log
    assert _completed(log, "nnUNetv2_predict") == 2  # interrupted predictions were made again, none twice
    assert test_dice["models"][0]["test_dice"] == runs["uninterrupted_stock_dice"]

    result = runs["benchmark"]
    assert runs["benchmark_table"].problems() == []
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    progress = [line for line in result.stdout.splitlines() if line.startswith("[benchmark ")]
    assert "done" in progress[-1]
    assert f"training {STOCK} fold 1" in "".join(a.stdout for a in runs["benchmark_table"].attempts)
    log = runs["benchmark_log"]
    assert f"$ nnUNetv2_train {DATASET_ID} 3d_fullres 1 -tr {STOCK}" in log
    assert _completed(log, "nnUNetv2_predict") == 4  # the demo's fold-0 predictions were reused, fold 1 added
    assert _completed(log, "nnUNetv2_train") == 1  # stock fold 1, once to the end (resumed with --c)
    results = json.loads((out / "results.json").read_text())
    run_records = results["runs"]
    assert sorted((r["trainer"], r["fold"]) for r in run_records) == sorted(
        (t, f) for t in (STOCK, PRUNED) for f in "01")
    for run in run_records:  # every Dice is nnU-Net's own evaluation of that run's predictions
        summary = json.loads((out / "predictions" / run["trainer"] / f"fold_{run['fold']}" / "summary.json")
                             .read_text())
        assert run["test_dice"] == summary["foreground_mean"]["Dice"]
    pruned = results["summary"][1]
    diffs = {r["fold"]: r["test_dice"] for r in run_records if r["trainer"] == PRUNED}
    base = {r["fold"]: r["test_dice"] for r in run_records if r["trainer"] == STOCK}
    assert pruned["paired_difference"]["mean"] == pytest.approx(sum(diffs[f] - base[f] for f in "01") / 2)
    assert results["setup"]["dataset"] == ws.dataset_name(DATASET_ID) and results["setup"]["cases"]["test"] == 2
    assert results["other_runs"] == []  # the demo's runs are this benchmark's fold 0: none left beside it
    assert (results["setup"]["configuration"], results["setup"]["device"]) == ("3d_fullres", "cpu")
    report = (out / "report.md").read_text()
    assert "test Dice mean +- sd" in report and "paired diff to baseline (95% CI)" in report
    assert f"{pruned['dice_mean']:.3f} +- {pruned['dice_sd']:.3f}" in report
    assert all(r["target_reached"] for r in run_records if r["trainer"] == PRUNED)
    assert len(list(csv.DictReader(open(out / "runs.csv")))) == 4 and (out / "dice.png").is_file()

    again = runs["again"]  # resumable: nothing is trained or predicted again
    assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
    assert (out / "commands.log").read_text() == log
    assert json.loads((out / "results.json").read_text())["runs"] == run_records
