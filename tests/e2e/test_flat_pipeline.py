"""Flat U-Net through the stock nnU-Net CLI: make-dataset, plan, train, predict, evaluate, count."""

import json
import os

import numpy as np
import pytest

from .conftest import DATASET_ID, FLAT_TRAINER as TRAINER, background_job, shared

pytestmark = pytest.mark.e2e


@background_job("test_trained_network_is_flat", "test_predict_and_evaluate", order=-1)
def _commands(trainings, folder) -> dict:
    """count as a real command, nnUNetv2_predict with worker processes, nnUNetv2_evaluate_folder (in the
    background)."""
    shared(trainings, TRAINER)
    ws = trainings.pipeline.ws
    model = ws.model_folder(DATASET_ID, TRAINER)
    counted = ws.count_json_subprocess(model)  # the real command: stdout is pure JSON
    out = str(folder / "pred")  # with worker processes, as nnUNetv2_predict runs by default (elsewhere: -npp 0)
    ws.run("nnUNetv2_predict", "-i", os.path.join(ws.raw_dataset, "imagesTs"), "-o", out, "-d", str(DATASET_ID),
           "-c", "3d_fullres", "-tr", TRAINER, "-f", "0", "-device", "cpu", "--disable_tta", "-npp", "1", "-nps", "1")
    ws.run("nnUNetv2_evaluate_folder", os.path.join(ws.raw_dataset, "labelsTs"), out, "-djfile",
           os.path.join(model, "dataset.json"), "-pfile", os.path.join(model, "plans.json"))
    return {"counted": counted, "predictions": out}


@pytest.fixture(scope="module")
def trained_flat_runs(trainings) -> dict:
    return trainings.job("test_trained_network_is_flat")


def test_trained_network_is_flat(trained_flat, trained_flat_runs):
    env = trained_flat
    folder = env.model_folder(DATASET_ID, TRAINER)
    assert os.path.isfile(os.path.join(folder, "fold_0", "checkpoint_final.pth"))
    result = trained_flat_runs["counted"]
    fold = result["networks"]["fold_0"]
    assert fold["architecture"] == "PlainConvUNet"
    for stage, widths in fold["widths"].items():
        assert widths == ([3] if "seg_layers" in stage else [16] * len(widths)), stage
    assert fold["checkpoint_bytes"] == os.path.getsize(os.path.join(folder, "fold_0", "checkpoint_final.pth"))
    # stock network of the same plans, counted by the same code: Flat-16 is far smaller
    stock = env.count_json(str(DATASET_ID), "-c", "3d_fullres")["networks"]["plans"]
    assert stock["params"] / fold["params"] > 15  # 3-stage 32-128 plans at 16^3: 16.7x


def test_predict_and_evaluate(trained_flat, trained_flat_runs):
    import SimpleITK as sitk

    env = trained_flat
    out = trained_flat_runs["predictions"]
    labels_ts = os.path.join(env.raw_dataset, "labelsTs")
    cases = sorted(os.listdir(labels_ts))
    assert sorted(f for f in os.listdir(out) if f.endswith(".nii.gz")) == cases
    dice = {1: [], 2: []}  # per class, per case, computed here from the written files
    for case in cases:
        pred = sitk.GetArrayFromImage(sitk.ReadImage(os.path.join(out, case)))
        ref = sitk.GetArrayFromImage(sitk.ReadImage(os.path.join(labels_ts, case)))
        assert pred.shape == ref.shape
        assert set(np.unique(pred)) <= {0, 1, 2}
        for c in dice:
            tp, p, r = ((pred == c) & (ref == c)).sum(), (pred == c).sum(), (ref == c).sum()
            dice[c].append(2 * tp / (p + r) if p + r else np.nan)
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert set(summary["mean"]) == {"1", "2"}
    for c, values in dice.items():  # nnU-Net's evaluation scored the files we read
        assert summary["mean"][str(c)]["Dice"] == pytest.approx(np.nanmean(values), abs=1e-6, nan_ok=True)


def test_flat_plans_build_a_flat_network_with_nnunets_own_trainer(planned_dataset):
    """`flat-plans` output reuses the preprocessed data, and nnU-Net's own trainer builds a flat net from it (the
    network nnUNetv2_train -p nnUNetPlansFlat8 would train: count builds it with the trainer's builder)."""
    env = planned_dataset
    env.run("nnunet-pruning", "flat-plans", str(DATASET_ID), "--width", "8")
    plans = json.load(open(os.path.join(env.preprocessed, env.dataset_name(DATASET_ID), "nnUNetPlansFlat8.json")))
    assert plans["configurations"]["3d_fullres"]["data_identifier"] == "nnUNetPlans_3d_fullres"
    counted = env.count_json(str(DATASET_ID), "-c", "3d_fullres", "-p", "nnUNetPlansFlat8", "-tr", "nnUNetTrainer")
    widths = counted["networks"]["plans"]["widths"]
    assert widths and all(w == [8] * len(w) for s, w in widths.items() if "seg_layers" not in s)
