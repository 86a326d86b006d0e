"""scripts/benchmark_training_time.py without training: reading nnU-Net's log and the paired summary."""

import importlib
import os
import time

import pytest

def _load():
    return importlib.import_module("scripts.benchmark_training_time")


def test_read_log_takes_the_newest_log(tmp_path):
    bench = _load()
    (tmp_path / "training_log_2026_01_01_00_00_00.txt").write_text("Epoch time: 99.0 s\n")
    (tmp_path / "training_log_2026_01_02_00_00_00.txt").write_text(
        "x: latency: table measured in 3.5 s\nx: Epoch time: 10.5 s\npruning step 1 ...; the step took 0.25 s\n"
        "x: Epoch time: 4.5 s\nx: Mean Validation Dice:  0.8125\n")
    run = bench.read_log(str(tmp_path))
    assert run == {"epochs_s": 15.0, "epoch_s": [10.5, 4.5], "pruning_steps_s": [0.25], "latency_table_s": 3.5,
                   "validation_dice": 0.8125}
    assert bench.read_log(str(tmp_path / "missing"))["validation_dice"] is None


def test_summary_ratios_are_paired_by_fold():
    bench = _load()
    runs = [{"variant": v, "fold": f, "wall_s": w, "epochs_s": w - 40}
            for v, f, w in (("stock", 0, 200.0), ("STAMP", 0, 140.0), ("stock", 1, 100.0), ("STAMP", 1, 80.0))]
    summary = bench.summarise(runs, ["stock", "STAMP"])
    assert summary["STAMP"]["wall_vs_stock"] == [0.7, 0.8]
    assert summary["STAMP"]["median_wall_vs_stock"] == pytest.approx(0.75)
    assert summary["stock"]["median_wall_s"] == 150.0


def test_trainers_become_variants_and_each_run_is_fresh(tmp_path, monkeypatch):
    """Any trainer by name is a variant; every run deletes its fold first and passes the variant's environment."""
    bench = _load()
    trained = []

    class FakePipeline:
        def __init__(self, results):
            self.results = results

        def fold_folder(self, trainer, fold):
            return str(tmp_path / self.results / trainer / f"fold_{fold}")

        def train(self, trainer, fold, extra_env):
            assert not os.path.exists(self.fold_folder(trainer, fold))
            trained.append((trainer, fold, self.results, extra_env))
            os.makedirs(self.fold_folder(trainer, fold))
            with open(os.path.join(self.fold_folder(trainer, fold), "training_log_1.txt"), "w") as f:
                f.write("Epoch time: 1.5 s\n")
            time.sleep(0.1)

    monkeypatch.setattr(bench, "pipeline", lambda work, threads, results="nnUNet_results": FakePipeline(results))
    monkeypatch.setattr(bench, "prepare", lambda work, threads: None)
    monkeypatch.setattr(bench, "QUIET_SECONDS", 0)
    out = tmp_path / "out.json"
    assert bench.main([str(tmp_path), "--rounds", "2", "--variants", "STAMP, default layout", "--trainers",
                       "nnUNetTrainerSTAMPLatency_5epochs_20iters", "--threads", "1", "--json", str(out)]) == 0
    assert [t[:3] for t in trained] == [
        ("nnUNetTrainerSTAMP_demo", 0, "nnUNet_results_default_layout"),
        ("nnUNetTrainerSTAMPLatency_5epochs_20iters", 0, "nnUNet_results"),
        ("nnUNetTrainerSTAMPLatency_5epochs_20iters", 1, "nnUNet_results"),
        ("nnUNetTrainerSTAMP_demo", 1, "nnUNet_results_default_layout")]
    assert trained[0][3] == {"nnUNet_pruning_channels_last": "0", "nnUNet_n_proc_DA": "1"}
    import json
    assert list(json.loads(out.read_text())["summary"]) == ["STAMP, default layout",
                                                           "nnUNetTrainerSTAMPLatency_5epochs_20iters"]
