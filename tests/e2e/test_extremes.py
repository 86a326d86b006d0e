"""Extremes through the real CLIs: a 2-channel anisotropic dataset planned with ResEnc plans, pruned in
2D and 3D and predicted; and a dataset too small for nnU-Net's 5 folds, refused in one line."""

import json
import os
import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from .conftest import E2EWorkspace

pytestmark = pytest.mark.e2e

MULTI, SMALL = 954, 953
RESENC_PLANS = "nnUNetResEncUNetMPlans"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> E2EWorkspace:
    return E2EWorkspace(str(tmp_path_factory.mktemp("extremes")), threads=1)


@pytest.fixture(scope="module")
def multichannel(workspace):
    ws = workspace
    ws.run("nnunet-pruning", "make-dataset", "--id", str(MULTI), "--name", "TwoChannelAniso", "--train", "5",
           "--test", "1", "--size", "16", "32", "32", "--channels", "2", "--spacing", "3", "1", "1", "--seed", "5")
    ws.run("nnUNetv2_plan_and_preprocess", "-d", str(MULTI), "-c", "2d", "3d_fullres", "-pl", "nnUNetPlannerResEncM",
           "-np", "1", "1", "-npfp", "1", extra_env={"nnUNet_n_proc_DA": "1"})
    return ws


@pytest.mark.parametrize("configuration, trainer", [("3d_fullres", "nnUNetTrainerSTAMP_smoke"),
                                                    ("2d", "nnUNetTrainerRandomLargest_smoke")])
def test_resenc_multichannel_anisotropic(multichannel, tmp_path, configuration, trainer):
    ws = multichannel
    name = ws.dataset_name(MULTI)
    plans = json.load(open(os.path.join(ws.preprocessed, name, f"{RESENC_PLANS}.json")))
    arch = plans["configurations"][configuration]["architecture"]["network_class_name"]
    assert arch.endswith("ResidualEncoderUNet")
    ws.run("nnUNetv2_train", str(MULTI), configuration, "0", "-tr", trainer, "-p", RESENC_PLANS, "-device", "cpu")
    folder = ws.model_folder(MULTI, trainer, RESENC_PLANS, configuration)
    log = json.load(open(os.path.join(folder, "fold_0", "pruning_log.json")))
    assert log["target_reached"] and log["steps"][-1]["params_fraction"] <= 0.5 + 1e-9
    out = str(tmp_path / "pred")
    ws.run("nnUNetv2_predict", "-i", os.path.join(ws.raw, name, "imagesTs"), "-o", out, "-d", str(MULTI), "-c",
           configuration, "-tr", trainer, "-p", RESENC_PLANS, "-f", "0", "-device", "cpu", "--disable_tta", "-npp",
           "1", "-nps", "1")
    image = sitk.ReadImage(os.path.join(ws.raw, name, "imagesTs", sorted(os.listdir(
        os.path.join(ws.raw, name, "imagesTs")))[0]))
    predictions = [f for f in os.listdir(out) if f.endswith(".nii.gz")]
    assert len(predictions) == 1
    prediction = sitk.ReadImage(os.path.join(out, predictions[0]))
    assert prediction.GetSize() == image.GetSize() and prediction.GetSpacing() == pytest.approx(image.GetSpacing())
    assert set(np.unique(sitk.GetArrayFromImage(prediction))) <= {0, 1, 2}


def test_fewer_than_five_cases_refused_in_one_line(workspace):
    ws = workspace
    ws.run("nnunet-pruning", "make-dataset", "--id", str(SMALL), "--name", "ThreeCases", "--train", "3", "--test",
           "1", "--size", "16", "--seed", "2")
    ws.run("nnUNetv2_plan_and_preprocess", "-d", str(SMALL), "-c", "3d_fullres", "-np", "1", "-npfp", "1",
           extra_env={"nnUNet_n_proc_DA": "1"})
    base = os.path.join(ws.preprocessed, ws.dataset_name(SMALL))
    before = sorted(os.listdir(base))
    result = subprocess.run([ws.executable("nnUNetv2_train"), str(SMALL), "3d_fullres", "1", "-tr",
                             "nnUNetTrainerFlatUNet16_smoke", "-device", "cpu"], env=ws.env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("nnunet-pruning: error: Dataset953_ThreeCases has 3 training cases, too few for "
                           "nnU-Net's 5-fold split (fold 1)"), result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(base)) == before  # no splits_final.json
