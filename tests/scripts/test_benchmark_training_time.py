"""scripts/benchmark_training_time.py without training: reading nnU-Net's log and the paired summary."""

import importlib.util
import os

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "benchmark_training_time.py")


def _load():
    spec = importlib.util.spec_from_file_location("benchmark_training_time", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_read_log_takes_the_newest_log(tmp_path):
    bench = _load()
    (tmp_path / "training_log_2026_01_01_00_00_00.txt").write_text("Epoch time: 99.0 s\n")
    (tmp_path / "training_log_2026_01_02_00_00_00.txt").write_text(
        "x: Epoch time: 10.5 s\npruning step 1 ...; the step took 0.25 s\nx: Epoch time: 4.5 s\n"
        "x: Mean Validation Dice:  0.8125\n")
    run = bench.read_log(str(tmp_path))
    assert run == {"epochs_s": 15.0, "epoch_s": [10.5, 4.5], "pruning_steps_s": [0.25], "validation_dice": 0.8125}
    assert bench.read_log(str(tmp_path / "missing"))["validation_dice"] is None


def test_summary_ratios_are_paired_by_fold():
    bench = _load()
    runs = [{"variant": v, "fold": f, "wall_s": w, "epochs_s": w - 40}
            for v, f, w in (("stock", 0, 200.0), ("STAMP", 0, 140.0), ("stock", 1, 100.0), ("STAMP", 1, 80.0))]
    summary = bench.summarise(runs, ["stock", "STAMP"])
    assert summary["STAMP"]["wall_vs_stock"] == [0.7, 0.8]
    assert summary["STAMP"]["median_wall_vs_stock"] == pytest.approx(0.75)
    assert summary["stock"]["median_wall_s"] == 150.0
