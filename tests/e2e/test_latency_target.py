"""The latency target through the real CLIs: the table is measured once, cached in the fold folder, reused by
``--c`` without measuring again; the log, count and compare report the measured latency."""

import json
import os

import pytest
import torch

from .conftest import DATASET_ID, LATENCY, STOCK, background_job, shared

pytestmark = pytest.mark.e2e


def _params(fold_dir: str) -> int:
    """Values in the final checkpoint's state dict (its shapes are the architecture)."""
    checkpoint = torch.load(os.path.join(fold_dir, "checkpoint_final.pth"), map_location="cpu", weights_only=False)
    return sum(v.numel() for v in checkpoint["network_weights"].values())


@background_job("test_latency_target_end_to_end")
def _commands(trainings, folder) -> dict:
    """``--c`` on the finished latency run, then compare it with stock (in the background)."""
    fold_dir, _ = shared(trainings, LATENCY), shared(trainings, STOCK)
    ws = trainings.pipeline.ws
    before = {"table_mtime": os.stat(os.path.join(fold_dir, "latency_table.json")).st_mtime_ns,
              "params": _params(fold_dir)}
    ws.run("nnUNetv2_train", str(DATASET_ID), "3d_fullres", "0", "-tr", LATENCY, "-device", "cpu", "--c")
    report_dir = str(folder / "compare")
    ws.run("nnunet-pruning", "compare", STOCK, "-tr", LATENCY, "-d", str(DATASET_ID), "-c", "3d_fullres", "-f", "0",
           "-o", report_dir, "--time", "--max-cases", "1", "--repeats", "1", "--warmup", "0", "--threads", "1")
    return {"fold_dir": fold_dir, "before": before, "compare": report_dir}


def test_latency_target_end_to_end(planned_dataset, trainings):
    ws = planned_dataset
    runs = trainings.job("test_latency_target_end_to_end")
    fold_dir, before = runs["fold_dir"], runs["before"]
    table_path = os.path.join(fold_dir, "latency_table.json")
    table = json.load(open(table_path))
    assert table["device"] == "cpu" and table["threads"] == 1 and table["base_seconds"] > 0
    assert all(w == sorted(w) for w in table["widths"].values())
    log = json.load(open(os.path.join(fold_dir, "pruning_log.json")))
    assert log["schedule"]["target_metric"] == "latency" and log["schedule"]["keep_fraction"] == 0.6
    assert log["latency"]["device"] == "cpu, 1 threads"
    assert log["original"]["latency"] == table["base_seconds"]
    assert log["steps"] and all("latency" in s and "latency_fraction" in s for s in log["steps"])
    # "reached" exactly when the last measured step is at the target; else the log says why it stopped short
    at_target = log["steps"][-1]["latency_fraction"] <= 0.6 + 1e-9
    assert log["target_reached"] is at_target and (log["outcome"] == "reached") is at_target, log
    assert at_target or log["outcome"] in ("nothing_left_to_cut", "minimum_widths", "out_of_epochs"), log

    # --c on the finished run: the table is reused, not measured again, and the architecture is kept
    assert os.stat(table_path).st_mtime_ns == before["table_mtime"]
    training_log = "".join(open(os.path.join(fold_dir, f)).read() for f in os.listdir(fold_dir)
                           if f.startswith("training_log"))
    assert "latency: table measured" in training_log and "ms measured" in training_log
    assert "latency: reusing latency_table.json" in training_log
    assert training_log.count("latency: table measured") == 1
    assert _params(fold_dir) == before["params"]
    counted = ws.count_json(ws.model_folder(DATASET_ID, LATENCY))["networks"]["fold_0"]["pruning"]
    assert counted["target_metric"] == "latency" and counted["latency"] > 0
    assert counted["latency_device"] == "cpu, 1 threads"

    report = open(os.path.join(runs["compare"], "report.md")).read()
    assert "measured latency" in report
    timing = json.load(open(os.path.join(runs["compare"], "results.json")))["inference"]
    assert set(timing["models"]) == {STOCK, LATENCY}  # (--compile both: tests/app/test_timing.py)
