"""Extremes through the real CLIs: a 2-channel anisotropic dataset planned with ResEnc plans, pruned and
predicted. (A dataset too small for nnU-Net's 5 folds is refused in one line: a row of tests/e2e/test_misuse.py.)"""

import json
import os

import numpy as np
import pytest
import SimpleITK as sitk

from .conftest import EXTREMES, MULTI, RESENC_PLANS, background_job

pytestmark = pytest.mark.e2e


@background_job("test_resenc_multichannel_anisotropic")
def _predict(trainings, folder) -> dict:
    """nnUNetv2_predict with each extreme model (in the background, after its training)."""
    ws, predictions = trainings.pipeline.ws, {}
    name = ws.dataset_name(MULTI)
    for configuration, trainer in EXTREMES:
        fold_dir = trainings.extreme(configuration, trainer)
        out = str(folder / f"{configuration}_{trainer}")
        ws.run("nnUNetv2_predict", "-i", os.path.join(ws.raw, name, "imagesTs"), "-o", out, "-d", str(MULTI), "-c",
               configuration, "-tr", trainer, "-p", RESENC_PLANS, "-f", "0", "-device", "cpu", "--disable_tta",
               "-npp", "0", "-nps", "0")
        predictions[configuration, trainer] = fold_dir, out
    return predictions


@pytest.mark.parametrize("configuration, trainer", EXTREMES)
def test_resenc_multichannel_anisotropic(planned_dataset, trainings, configuration, trainer):
    ws = planned_dataset
    fold_dir, out = trainings.job("test_resenc_multichannel_anisotropic")[configuration, trainer]
    name = ws.dataset_name(MULTI)
    plans = json.load(open(os.path.join(ws.preprocessed, name, f"{RESENC_PLANS}.json")))
    arch = plans["configurations"][configuration]["architecture"]["network_class_name"]
    assert arch.endswith("ResidualEncoderUNet")
    log = json.load(open(os.path.join(fold_dir, "pruning_log.json")))
    assert log["target_reached"] and log["steps"][-1]["params_fraction"] <= 0.5 + 1e-9
    image = sitk.ReadImage(os.path.join(ws.raw, name, "imagesTs", sorted(os.listdir(
        os.path.join(ws.raw, name, "imagesTs")))[0]))
    predictions = [f for f in os.listdir(out) if f.endswith(".nii.gz")]
    assert len(predictions) == 1
    prediction = sitk.ReadImage(os.path.join(out, predictions[0]))
    assert prediction.GetSize() == image.GetSize() and prediction.GetSpacing() == pytest.approx(image.GetSpacing())
    assert set(np.unique(sitk.GetArrayFromImage(prediction))) <= {0, 1, 2}
