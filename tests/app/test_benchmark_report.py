"""The benchmark's report, runs.csv, results.json and plots, on hand-made runs (the real CLI run is
tests/e2e/test_demo_and_benchmark.py)."""

import csv
import json

import pytest

from nnunet_pruning.app.benchmark_report import write_benchmark_report
from nnunet_pruning.app.run_statistics import summarise_runs
from nnunet_pruning.core.errors import PruningError

from .hand_made_runs import hand_made_runs


def test_report_shows_mean_sd_and_paired_differences(tmp_path):
    setup = {"dataset": "Dataset901_Benchmark", "cases": {"train": 10, "test": 4}, "shape": [32, 32, 32],
             "folds": ["0", "1", "2"], "trainers": ["stock", "stamp"], "elapsed_seconds": 600.0,
             "labels": {"1": "tube", "2": "dot"}, "synthetic": {"seed": 3, "shape": [32, 32, 32], "task": "fine"},
             "command": "nnunet-pruning benchmark -o out --task fine"}
    runs = hand_made_runs()
    for r in runs:
        r["test_dice_per_class"] = {"1": 0.1, "2": 0.2}
    written = write_benchmark_report(str(tmp_path), runs, ["stock", "stamp"], setup)
    report = open(written["report"]).read()
    assert "(10 training / 4 test cases, shape 32x32x32, synthetic task fine, seed 3), 3d_fullres" in report
    assert "| Dice tube (1) | Dice dot (2) |" in report
    assert "Command: `nnunet-pruning benchmark -o out --task fine`" in report
    assert json.load(open(written["json"]))["setup"]["command"] == setup["command"]
    assert "| `stock` | 3 | 0.800 +- 0.020 | baseline |" in report
    assert "| fold | stock | stamp |\n|---|---|---|\n| 0 | 0.800 | 0.790 |\n| 1 | 0.820 | 0.800 |\n| 2 | 0.780 | 0.760 |" \
        in report  # the pairs behind the differences
    assert "| `stamp` (**target missed in fold 2**) | 3 | 0.783 +- 0.021 | -0.017 (-0.031 to -0.002) |" in report
    assert "Targets missed" not in report  # no reason recorded: nothing to list
    for r in runs:
        if r["trainer"] == "stamp" and r["fold"] in ("1", "2"):
            r.update(target_reached=False, pruning="66.4% of the latency (target 50%), stopped short")
    report = open(write_benchmark_report(str(tmp_path), runs, ["stock", "stamp"], setup)["report"]).read()
    assert "| `stamp` (**target missed in folds 1, 2**) | 3 |" in report  # one note in the cell, reasons below
    assert "- `stamp` fold 1: 66.4% of the latency (target 50%), stopped short" in report
    assert "cost: 10.0 min" in report and "![test Dice per run](dice.png)" in report
    assert len(list(csv.DictReader(open(written["csv"])))) == 6
    assert json.load(open(written["json"]))["summary"][1]["paired_difference"]["n"] == 3
    assert (tmp_path / "dice.png").stat().st_size > 5000
    assert "| `stamp` | +0.000 (+0.000 to +0.000) | +0.000 (+0.000 to +0.000) |" in report  # equal per class
    assert "| trainer | tube (1) | dot (2) |" in report and "(dice_per_class.png)" in report


def test_report_against_a_reference_trainer_and_per_class(tmp_path):
    runs = hand_made_runs() + [dict(r, trainer="ablation", test_dice=r["test_dice"] + 0.01) for r in hand_made_runs()
                      if r["trainer"] == "stamp"]
    for r in runs:
        r["test_dice_per_class"] = {"1": r["test_dice"] - 0.05, "2": r["test_dice"] + 0.05}
    trainers = ["stock", "stamp", "ablation"]
    rows = summarise_runs(runs, trainers, reference="stamp")
    assert rows[0]["paired_difference_to_reference"] is None and rows[1]["paired_difference_to_reference"] is None
    assert rows[2]["paired_difference_to_reference"]["mean"] == pytest.approx(0.01)
    assert rows[2]["dice_per_class_mean"]["1"] == pytest.approx(0.7833333 + 0.01 - 0.05)
    setup = {"dataset": "D", "cases": {"train": 10, "test": 4}, "folds": ["0", "1", "2"], "trainers": trainers,
             "elapsed_seconds": 60.0}
    report = open(write_benchmark_report(str(tmp_path), runs, trainers, setup, reference="stamp")["report"]).read()
    assert "paired diff to `stamp` (95% CI) | Dice class 1 | Dice class 2 |" in report
    assert "| baseline | - | 0.750 | 0.850 |" in report and "| -0.017 (-0.031 to -0.002) | reference |" in report
    assert "| +0.010 (+0.010 to +0.010) | 0.743 | 0.843 |" in report
    # per class, fold by fold against the baseline: a table and a plot
    assert rows[1]["paired_difference_per_class"]["2"]["mean"] == pytest.approx(-0.0166667, abs=1e-6)
    assert rows[0]["paired_difference_per_class"] is None
    assert "| trainer | class 1 | class 2 |" in report
    assert "| `stamp` | -0.017 (-0.031 to -0.002) | -0.017 (-0.031 to -0.002) |" in report
    assert "| `ablation` | -0.007 (-0.021 to +0.008) | -0.007 (-0.021 to +0.008) |" in report
    assert (tmp_path / "dice_per_class.png").stat().st_size > 5000
    # per class against the reference too (the ablation's classes each +0.01 over STAMP's in every fold)
    assert rows[2]["paired_difference_per_class_to_reference"]["1"]["mean"] == pytest.approx(0.01)
    assert rows[1]["paired_difference_per_class_to_reference"] is None
    assert "minus the reference's (`stamp`), fold by fold" in report
    assert "| `ablation` | +0.010 (+0.010 to +0.010) | +0.010 (+0.010 to +0.010) |" in report
    with pytest.raises(PruningError, match="not one of the benchmarked"):
        summarise_runs(runs, trainers, reference="other")


def test_runs_scored_before_in_the_workspace_are_kept_beside_the_report(tmp_path):
    """An earlier invocation's trainers and folds leave the tables but not results.json or runs.csv."""
    setup = {"dataset": "D", "cases": {"train": 10, "test": 4}, "folds": ["0", "1", "2"],
             "trainers": ["stock", "stamp"], "elapsed_seconds": 60.0}
    other = [{"trainer": "flat", "fold": "0", "test_dice": 0.70, "params": 10, "gflops": 1.0, "train_seconds": 50.0,
              "target_reached": None},
             {"trainer": "flat", "fold": "1", "test_dice": 0.74, "params": 10, "gflops": 1.0, "train_seconds": 50.0,
              "target_reached": None},
             {"trainer": "stock", "fold": "4", "test_dice": 0.9, "params": 100, "gflops": 2.0, "train_seconds": 60.0,
              "target_reached": None}]
    written = write_benchmark_report(str(tmp_path), hand_made_runs(), ["stock", "stamp"], setup, other_runs=other)
    report = open(written["report"]).read()
    assert "| `stock` | 3 | 0.800 +- 0.020 | baseline |" in report  # fold 4 of stock is no part of the table
    assert "Other runs scored in this workspace before" in report
    assert "- `flat` folds 0, 1: test Dice 0.720 +- 0.028" in report and "- `stock` fold 4: test Dice 0.900" in report
    saved = json.load(open(written["json"]))
    assert saved["other_runs"] == other and len(saved["runs"]) == 6
    rows = list(csv.DictReader(open(written["csv"])))
    assert [(r["trainer"], r["fold"], r["in_report"]) for r in rows[6:]] == [
        ("flat", "0", "False"), ("flat", "1", "False"), ("stock", "4", "False")]
    assert {r["in_report"] for r in rows[:6]} == {"True"}
    plain = open(write_benchmark_report(str(tmp_path), hand_made_runs(), ["stock", "stamp"], setup)["report"]).read()
    assert "Other runs" not in plain and json.load(open(written["json"]))["other_runs"] == []


def test_the_report_names_the_device_it_ran_on(tmp_path):
    setup = {"dataset": "D", "cases": {"train": 10, "test": 4}, "folds": ["0", "1", "2"],
             "trainers": ["stock", "stamp"], "elapsed_seconds": 60.0}
    timing = {"models": {t: {"median": {"total": s}, "backend": "torch"} for t, s in (("stock", 2.0), ("stamp", 1.0))}}
    report = open(write_benchmark_report(str(tmp_path), hand_made_runs(), ["stock", "stamp"], setup)["report"]).read()
    assert "3d_fullres, CPU. Every trainer ran" in report  # results.json of before, without a device: the CPU
    gpu = dict(setup, device="cuda", device_name="NVIDIA H200")
    report = open(write_benchmark_report(str(tmp_path), hand_made_runs(), ["stock", "stamp"], gpu,
                                         timing)["report"]).read()
    assert "3d_fullres, GPU (NVIDIA H200). Every trainer ran" in report
    assert "fold 0, GPU (NVIDIA H200), no mirroring" in report and "| 1.000 (2.00x) |" in report
    assert "other processes" not in report  # a timing without the load measured says nothing of it
    timing.update(other_cpu_cores=0.004, other_cpu_cores_peak=0.02)
    report = open(write_benchmark_report(str(tmp_path), hand_made_runs(), ["stock", "stamp"], gpu,
                                         timing)["report"]).read()
    assert "- other processes kept 0.00 CPU cores busy on average while timing, 0.02 in the busiest second (idle " \
           "enough)." in report
    timing.update(other_cpu_cores=0.4)
    report = open(write_benchmark_report(str(tmp_path), hand_made_runs(), ["stock", "stamp"], gpu,
                                         timing)["report"]).read()
    assert "(**suspect: rerun on an idle machine**)" in report
    cpu = dict(setup, device="cpu", device_name="AMD EPYC 7B13")
    report = open(write_benchmark_report(str(tmp_path), hand_made_runs(), ["stock", "stamp"], cpu, timing)["report"]).read()
    assert "3d_fullres, CPU (AMD EPYC 7B13). Every trainer ran" in report and "fold 0, 2 threads, no mirroring" in report
