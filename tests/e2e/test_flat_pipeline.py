"""Flat U-Net through the stock nnU-Net CLI: make-dataset, plan, train, predict, evaluate, count."""

import json
import os

import numpy as np
import pytest

from .conftest import DATASET_ID, FLAT_TRAINER as TRAINER

pytestmark = pytest.mark.e2e


def test_trained_network_is_flat(trained_flat):
    env = trained_flat
    folder = env.model_folder(DATASET_ID, TRAINER)
    assert os.path.isfile(os.path.join(folder, "fold_0", "checkpoint_final.pth"))
    result = env.count_json(folder)
    fold = result["networks"]["fold_0"]
    assert fold["architecture"] == "PlainConvUNet"
    for stage, widths in fold["widths"].items():
        assert widths == ([3] if "seg_layers" in stage else [16] * len(widths)), stage
    assert fold["checkpoint_bytes"] == os.path.getsize(os.path.join(folder, "fold_0", "checkpoint_final.pth"))
    # stock network of the same plans, counted by the same code: Flat-16 is far smaller
    stock = env.count_json(str(DATASET_ID), "-c", "3d_fullres")["networks"]["plans"]
    assert stock["params"] / fold["params"] > 40


def test_predict_and_evaluate(trained_flat, tmp_path):
    import SimpleITK as sitk

    env = trained_flat
    out = str(tmp_path / "pred")
    env.run("nnUNetv2_predict", "-i", os.path.join(env.raw_dataset, "imagesTs"), "-o", out, "-d", str(DATASET_ID),
            "-c", "3d_fullres", "-tr", TRAINER, "-f", "0", "-device", "cpu", "--disable_tta", "-npp", "1",
            "-nps", "1")
    labels_ts = os.path.join(env.raw_dataset, "labelsTs")
    cases = sorted(os.listdir(labels_ts))
    assert sorted(f for f in os.listdir(out) if f.endswith(".nii.gz")) == cases
    for case in cases:
        pred = sitk.GetArrayFromImage(sitk.ReadImage(os.path.join(out, case)))
        ref = sitk.GetArrayFromImage(sitk.ReadImage(os.path.join(labels_ts, case)))
        assert pred.shape == ref.shape
        assert set(np.unique(pred)) <= {0, 1, 2}
    folder = env.model_folder(DATASET_ID, TRAINER)
    env.run("nnUNetv2_evaluate_folder", labels_ts, out, "-djfile", os.path.join(folder, "dataset.json"),
            "-pfile", os.path.join(folder, "plans.json"))
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert set(summary["mean"]) == {"1", "2"}
    assert 0.0 <= summary["foreground_mean"]["Dice"] <= 1.0


def test_val_rebuilds_the_same_network(trained_flat):
    env = trained_flat
    env.run("nnUNetv2_train", str(DATASET_ID), "3d_fullres", "0", "-tr", TRAINER, "-device", "cpu", "--val")
    assert os.path.isfile(os.path.join(env.model_folder(DATASET_ID, TRAINER), "fold_0", "validation", "summary.json"))


def test_flat_plans_train_with_stock_trainer(planned_dataset):
    """`flat-plans` output reuses the preprocessed data and any trainer trains a flat net from it."""
    env = planned_dataset
    env.run("nnunet-pruning", "flat-plans", str(DATASET_ID), "--width", "8")
    plans = json.load(open(os.path.join(env.preprocessed, env.dataset_name(DATASET_ID), "nnUNetPlansFlat8.json")))
    assert plans["configurations"]["3d_fullres"]["data_identifier"] == "nnUNetPlans_3d_fullres"
    env.run("nnUNetv2_train", str(DATASET_ID), "3d_fullres", "0", "-p", "nnUNetPlansFlat8", "-tr",
            "nnUNetTrainerStock_smoke", "-device", "cpu")
    trained = env.count_json(env.model_folder(DATASET_ID, "nnUNetTrainerStock_smoke", "nnUNetPlansFlat8"))
    widths = trained["networks"]["fold_0"]["widths"]
    assert all(w == [8] * len(w) for s, w in widths.items() if "seg_layers" not in s)
