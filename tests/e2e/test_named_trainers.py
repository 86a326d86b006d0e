"""A budget chosen by name, through the real CLIs: train, --c, predict and compare on that model folder."""

import json
import os

import pytest

from .conftest import DATASET_ID

pytestmark = pytest.mark.e2e

NAMED = "nnUNetTrainerRandomLargest_keep10_2epochs_2iters"
STOCK = "nnUNetTrainerStock_smoke"


def test_named_budget_end_to_end(planned_dataset, train, tmp_path):
    ws = planned_dataset
    fold_dir = train(NAMED)
    folder = ws.model_folder(DATASET_ID, NAMED)
    assert os.path.dirname(fold_dir) == folder  # the folder name records the settings
    log = json.load(open(os.path.join(fold_dir, "pruning_log.json")))
    assert log["target_reached"] and log["schedule"]["keep_fraction"] == 0.1
    counted = ws.count_json(folder)["networks"]["fold_0"]
    assert counted["params"] <= 0.1 * log["original"]["params"]
    assert counted["pruning"]["target_reached"] and counted["pruning"]["kept_fraction"] <= 0.1

    before = counted["params"]
    ws.run("nnUNetv2_train", str(DATASET_ID), "3d_fullres", "0", "-tr", NAMED, "-device", "cpu", "--c")
    assert ws.count_json(folder)["networks"]["fold_0"]["params"] == before

    out = str(tmp_path / "pred")
    ws.run("nnUNetv2_predict", "-i", os.path.join(ws.raw_dataset, "imagesTs"), "-o", out, "-d", str(DATASET_ID),
           "-c", "3d_fullres", "-tr", NAMED, "-f", "0", "-device", "cpu", "--disable_tta", "-npp", "1", "-nps", "1")
    assert len([f for f in os.listdir(out) if f.endswith(".nii.gz")]) == len(os.listdir(
        os.path.join(ws.raw_dataset, "imagesTs")))

    train(STOCK)
    report_dir = str(tmp_path / "compare")
    ws.run("nnunet-pruning", "compare", STOCK, "-tr", NAMED, "-d", str(DATASET_ID), "-c", "3d_fullres", "-f", "0",
           "-o", report_dir)
    results = json.load(open(os.path.join(report_dir, "results.json")))
    assert [m["trainer"] for m in results["models"]] == [STOCK, NAMED]
    assert results["models"][1]["summary"]["target_reached"] is True
    assert "NOT reached" not in open(os.path.join(report_dir, "report.md")).read()
