"""Extremes through the real CLIs: a 2-channel anisotropic dataset planned with ResEnc plans, pruned and
predicted; and a dataset too small for nnU-Net's 5 folds, refused in one line."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from .conftest import DATASET_ID, EXTREMES, MULTI, RESENC_PLANS

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("configuration, trainer", EXTREMES)
def test_resenc_multichannel_anisotropic(planned_dataset, trainings, tmp_path, configuration, trainer):
    ws = planned_dataset
    fold_dir = trainings.extreme(configuration, trainer)  # trained in the background (conftest.py)
    name = ws.dataset_name(MULTI)
    plans = json.load(open(os.path.join(ws.preprocessed, name, f"{RESENC_PLANS}.json")))
    arch = plans["configurations"][configuration]["architecture"]["network_class_name"]
    assert arch.endswith("ResidualEncoderUNet")
    log = json.load(open(os.path.join(fold_dir, "pruning_log.json")))
    assert log["target_reached"] and log["steps"][-1]["params_fraction"] <= 0.5 + 1e-9
    out = str(tmp_path / "pred")
    ws.run("nnUNetv2_predict", "-i", os.path.join(ws.raw, name, "imagesTs"), "-o", out, "-d", str(MULTI), "-c",
           configuration, "-tr", trainer, "-p", RESENC_PLANS, "-f", "0", "-device", "cpu", "--disable_tta", "-npp",
           "0", "-nps", "0")
    image = sitk.ReadImage(os.path.join(ws.raw, name, "imagesTs", sorted(os.listdir(
        os.path.join(ws.raw, name, "imagesTs")))[0]))
    predictions = [f for f in os.listdir(out) if f.endswith(".nii.gz")]
    assert len(predictions) == 1
    prediction = sitk.ReadImage(os.path.join(out, predictions[0]))
    assert prediction.GetSize() == image.GetSize() and prediction.GetSpacing() == pytest.approx(image.GetSpacing())
    assert set(np.unique(sitk.GetArrayFromImage(prediction))) <= {0, 1, 2}


def test_fewer_than_five_cases_refused_in_one_line(planned_dataset, tmp_path):
    """The session's preprocessed dataset, copied with only 3 of its cases and no splits_final.json."""
    ws = planned_dataset
    name = ws.dataset_name(DATASET_ID)
    preprocessed = tmp_path / "nnUNet_preprocessed"
    shutil.copytree(os.path.join(ws.preprocessed, name), preprocessed / name,
                    ignore=shutil.ignore_patterns("splits_final.json"))
    data = preprocessed / name / "nnUNetPlans_3d_fullres"
    cases = sorted({f.split(".")[0].removesuffix("_seg") for f in os.listdir(data)})
    assert len(cases) == 5
    for f in os.listdir(data):
        if f.split(".")[0].removesuffix("_seg") not in cases[:3]:
            os.remove(data / f)
    base = str(preprocessed / name)
    before = sorted(os.listdir(base))
    env = dict(ws.env, nnUNet_preprocessed=str(preprocessed), nnUNet_results=str(tmp_path / "results"))
    result = subprocess.run([ws.executable("nnUNetv2_train"), str(DATASET_ID), "3d_fullres", "1", "-tr",
                             "nnUNetTrainerFlatUNet16_smoke", "-device", "cpu"], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"nnunet-pruning: error: {name} has 3 training cases, too few for "
                           "nnU-Net's 5-fold split (fold 1)"), result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(base)) == before  # no splits_final.json
