"""A budget chosen by name, through the real CLIs: train (from a stock model's weights), predict and compare on
that model folder."""

import contextlib
import io
import json
import os

import pytest
import SimpleITK as sitk

from nnunet_pruning.app import cli
from nnunet_pruning.core import runtimes

from .conftest import DATASET_ID, NAMED, STOCK, background_job, shared

pytestmark = pytest.mark.e2e


@background_job("test_named_budget_from_pretrained_stock_weights_end_to_end")
def _commands(trainings, folder) -> dict:
    """nnUNetv2_predict with the network on a runtime backend, and compare (in the background)."""
    shared(trainings, STOCK), shared(trainings, NAMED)
    ws = trainings.pipeline.ws
    out = str(folder / "pred")  # nnUNetv2_predict itself, the network on the backend the variable names
    backend = "openvino" if runtimes.installed("openvino") else "onnxruntime"
    ws.run("nnUNetv2_predict", "-i", os.path.join(ws.raw_dataset, "imagesTs"), "-o", out, "-d", str(DATASET_ID),
           "-c", "3d_fullres", "-tr", NAMED, "-f", "0", "-device", "cpu", "--disable_tta", "-npp", "0", "-nps", "0",
           extra_env={"nnUNet_pruning_backend": backend})
    report_dir = str(folder / "compare")
    ws.run("nnunet-pruning", "compare", STOCK, "-tr", NAMED, "-d", str(DATASET_ID), "-c", "3d_fullres", "-f", "0",
           "-o", report_dir)
    return {"predictions": out, "compare": report_dir}


def test_named_budget_from_pretrained_stock_weights_end_to_end(planned_dataset, train, trainings, tmp_path):
    """``-pretrained_weights`` from a stock nnU-Net model: the pruning trainer named with its settings starts from
    that model and prunes it to its own target (conftest.py trains it so)."""
    ws = planned_dataset
    stock = train(STOCK)
    fold_dir = train(NAMED)
    folder = ws.model_folder(DATASET_ID, NAMED)
    assert os.path.dirname(fold_dir) == folder  # the folder name records the settings
    log = json.load(open(os.path.join(fold_dir, "pruning_log.json")))
    assert log["target_reached"] and log["schedule"]["keep_fraction"] == 0.1
    assert log["original"]["params"] == ws.count_json(os.path.dirname(stock))["networks"]["fold_0"]["params"]
    assert "-pretrained_weights" in open(os.path.join(ws.root, "commands.log")).read()
    counted = ws.count_json(folder)["networks"]["fold_0"]
    assert counted["params"] <= 0.1 * log["original"]["params"]
    assert counted["pruning"]["target_reached"] and counted["pruning"]["kept_fraction"] <= 0.1

    runs = trainings.job("test_named_budget_from_pretrained_stock_weights_end_to_end")
    out = runs["predictions"]  # by nnUNetv2_predict, the network on a runtime backend
    cases = sorted(f for f in os.listdir(out) if f.endswith(".nii.gz"))
    assert len(cases) == len(os.listdir(os.path.join(ws.raw_dataset, "imagesTs")))
    reference = str(tmp_path / "torch")  # the same with PyTorch, through nnunet-pruning predict (in-process)
    with ws.exported(), contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["predict", "-i", os.path.join(ws.raw_dataset, "imagesTs"), "-o", reference, "-m", folder,
                         "-f", "0", "--backend", "torch", "--disable_tta", "-npp", "0", "-nps", "0"]) == 0
    for case in cases:
        a, b = (sitk.GetArrayFromImage(sitk.ReadImage(os.path.join(d, case))) for d in (out, reference))
        assert (a == b).mean() >= 0.999, case

    report_dir = runs["compare"]
    results = json.load(open(os.path.join(report_dir, "results.json")))
    assert [m["trainer"] for m in results["models"]] == [STOCK, NAMED]
    assert results["models"][1]["summary"]["target_reached"] is True
    assert "NOT reached" not in open(os.path.join(report_dir, "report.md")).read()
