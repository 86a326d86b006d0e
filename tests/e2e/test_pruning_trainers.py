"""STAMP and random-largest pruning through the stock nnUNetv2_* commands (short CPU variants)."""

import json
import os
import re
import shutil
import signal

import numpy as np
import pytest
import torch

from nnunet_pruning.adapter.networks import build_from_checkpoint
from nnunet_pruning.core import runtimes

from .conftest import DATASET_ID, RANDOM_LARGEST, STAMP, background_job, shared
from .interrupt import run_once

pytestmark = pytest.mark.e2e

#: one score-based and one random method; the GFLOPs and latency targets are tests/core (pruner, latency) and
#: tests/e2e/test_latency_target.py
PRUNING_TRAINERS = [STAMP, RANDOM_LARGEST]


@pytest.mark.parametrize("trainer", PRUNING_TRAINERS)
def test_pruned_to_target_and_log_agrees_with_checkpoint(planned_dataset, train, trainer):
    fold_dir = train(trainer)
    log = json.load(open(os.path.join(fold_dir, "pruning_log.json")))
    metric = log["schedule"]["target_metric"]
    assert log["target_reached"] and len(log["steps"]) == 2
    assert [s["epoch"] for s in log["steps"]] == [0, 1]
    last = log["steps"][-1]
    assert last[f"{metric}_fraction"] <= log["schedule"]["keep_fraction"] + 1e-9
    assert all(isinstance(s["ema_pseudo_dice"], float) for s in log["steps"])
    counted = planned_dataset.count_json(os.path.dirname(fold_dir), "--checkpoint", "checkpoint_final.pth")
    fold = counted["networks"]["fold_0"]
    assert fold["params"] == last["params"]
    assert fold["gflops"] == pytest.approx(last["gflops"])
    assert fold["params"] < log["original"]["params"]
    assert os.path.getsize(os.path.join(fold_dir, "pruning_progress.png")) > 10_000
    training_log = open(next(os.path.join(fold_dir, f) for f in os.listdir(fold_dir)
                             if f.startswith("training_log"))).read()
    assert training_log.count("pruning step") == 2
    checkpoint = torch.load(os.path.join(fold_dir, "checkpoint_final.pth"), map_location="cpu", weights_only=False)
    assert checkpoint["pruning"]["steps"] == 2 and checkpoint["pruning"]["log"] == log["steps"]


@background_job("test_val_reproduces_the_validation_of_training")
def _val(trainings, folder) -> dict:
    """``--val --npz`` on a copy of the STAMP model whose validation summary was removed (in the background)."""
    fold = shared(trainings, STAMP)
    ws = trainings.pipeline.ws
    results = folder / "nnUNet_results"
    copy = results / ws.dataset_name(DATASET_ID) / os.path.basename(os.path.dirname(fold))
    shutil.copytree(os.path.dirname(fold), copy)
    summary = copy / "fold_0" / "validation" / "summary.json"
    before = json.loads(summary.read_text())
    os.remove(summary)
    ws.run("nnUNetv2_train", str(DATASET_ID), "3d_fullres", "0", "-tr", STAMP, "-device", "cpu", "--val", "--npz",
           extra_env={"nnUNet_results": str(results)})
    return {"before": before, "after": json.loads(summary.read_text()),
            "files": os.listdir(copy / "fold_0" / "validation")}


def test_val_reproduces_the_validation_of_training(trainings):
    runs = trainings.job("test_val_reproduces_the_validation_of_training")
    before, after = runs["before"], runs["after"]
    assert after["foreground_mean"]["Dice"] == pytest.approx(before["foreground_mean"]["Dice"], abs=1e-6)
    assert any(f.endswith(".npz") for f in runs["files"])


def _predict(ws, trainer, out, extra_env=None, mirroring=False):
    return ws.run("nnUNetv2_predict", "-i", os.path.join(ws.raw_dataset, "imagesTs"), "-o", out, "-d",
                  str(DATASET_ID), "-c", "3d_fullres", "-tr", trainer, "-f", "0", "1", "-device", "cpu",
                  *([] if mirroring else ["--disable_tta"]), "-npp", "0", "-nps", "0", "--save_probabilities",
                  extra_env=extra_env)


@background_job("test_two_folds_pruned_differently_predict_eager_and_compiled_alike",
                "test_nnunetv2_predict_chooses_the_backend_by_timing_it", order=-1)
def _two_folds(trainings, folder) -> dict:
    shared(trainings, RANDOM_LARGEST, 0), shared(trainings, RANDOM_LARGEST, 1)
    ws = trainings.pipeline.ws
    eager, compiled, auto = str(folder / "eager"), str(folder / "compiled"), str(folder / "auto")
    _predict(ws, RANDOM_LARGEST, eager)
    output = _predict(ws, RANDOM_LARGEST, compiled, extra_env={"nnUNet_compile": "1"})
    # the default backend, auto, with mirroring (8 calls per tile: each fold's trial ends in the second case)
    auto_output = _predict(ws, RANDOM_LARGEST, auto, extra_env={"nnUNet_pruning_backend": "auto"}, mirroring=True)
    _predict(ws, RANDOM_LARGEST, auto + "_torch", mirroring=True)
    return {"eager": eager, "compiled": compiled, "compiled_output": output, "auto": auto, "auto_output": auto_output}


def test_two_folds_pruned_differently_predict_eager_and_compiled_alike(planned_dataset, trainings):
    """Stock nnUNetv2_predict ensembles folds of different shapes; with ``nnUNet_compile=1`` the predictor compiles
    the network once, then loads each fold into ``_orig_mod``: the resizable network changes shape under the
    compiled wrapper (torch recompiles), and the result is the eager one."""
    ws = planned_dataset
    runs = trainings.job("test_two_folds_pruned_differently_predict_eager_and_compiled_alike")
    networks = ws.count_json(ws.model_folder(DATASET_ID, RANDOM_LARGEST))["networks"]
    assert networks["fold_0"]["widths"] != networks["fold_1"]["widths"]  # seeded from the fold
    eager, compiled = runs["eager"], runs["compiled"]
    cases = sorted(f for f in os.listdir(eager) if f.endswith(".npz"))
    assert len(cases) == 2 and len([f for f in os.listdir(eager) if f.endswith(".nii.gz")]) == 2
    assert "Using torch.compile" in runs["compiled_output"]
    for case in cases:
        a = np.load(os.path.join(eager, case))["probabilities"]
        b = np.load(os.path.join(compiled, case))["probabilities"]
        _assert_float32_alike(a, b)


def test_nnunetv2_predict_chooses_the_backend_by_timing_it(planned_dataset, trainings):
    """``nnUNet_pruning_backend=auto`` (the default outside the tests): each fold's network times PyTorch and
    OpenVINO on its first tiles inside nnU-Net's predictor, says what it chose, and segments as PyTorch does."""
    runs = trainings.job("test_two_folds_pruned_differently_predict_eager_and_compiled_alike")
    # (stdout and stderr are one stream here: nnU-Net's progress bar may precede the line on its row)
    lines = re.findall(r"nnunet-pruning: backend auto: .*", runs["auto_output"])
    if runtimes.installed("openvino"):  # (./run test installs it)
        assert len(lines) == 2, runs["auto_output"][-3000:]  # one per fold (the same tile shape)
        assert all(re.fullmatch(r"nnunet-pruning: backend auto: (torch|openvino) for input 1x1x\d+x\d+x\d+ "
                                r"\(1 threads; median per call, the caller's work between calls included: "
                                r"torch [\d.]+ ms, openvino [\d.]+ ms\)", line) for line in lines), lines
    else:
        assert lines == []
    auto, torch_run = runs["auto"], runs["auto"] + "_torch"
    for case in sorted(f for f in os.listdir(torch_run) if f.endswith(".npz")):
        a = np.load(os.path.join(torch_run, case))["probabilities"]
        b = np.load(os.path.join(auto, case))["probabilities"]
        _assert_float32_alike(a, b)


def _assert_float32_alike(a: np.ndarray, b: np.ndarray) -> None:
    """Probabilities of the same network from two float32 runtimes (eager/compiled, PyTorch/OpenVINO): their
    kernels sum in other orders, and InstanceNorm amplifies the ~1e-7 differences where a channel is nearly
    constant. A CI run saw PyTorch vs OpenVINO differ by up to 1.1e-3 (the network is trained anew, unseeded,
    each run); a wrong tile, mirror or fold differs by ~1e-1 nearly everywhere. So: none beyond 1e-2, a tiny mean,
    the same labels."""
    difference = np.abs(a - b)
    assert difference.max() < 1e-2 and difference.mean() < 1e-4, (difference.max(), difference.mean())
    assert (a.argmax(0) == b.argmax(0)).mean() > 0.999


@background_job("test_resume_mid_pruning_ends_with_the_same_architecture", order=-2)
def _resume(trainings, folder) -> dict:
    """Killed (SIGKILL, the whole process group: a crash) as the epoch after the first pruning step begins, then
    resumed with --c, in a results folder of its own."""
    straight = shared(trainings, RANDOM_LARGEST, 0)
    ws = trainings.pipeline.ws
    env = dict(ws.env, nnUNet_results=str(folder / "results"))
    command = [ws.executable("nnUNetv2_train"), str(DATASET_ID), "3d_fullres", "0", "-tr", RANDOM_LARGEST, "-device",
               "cpu"]
    killed = run_once(command, env, ws.root, point=r"Epoch 1\b", sig=signal.SIGKILL)
    fold_dir = os.path.join(env["nnUNet_results"], ws.dataset_name(DATASET_ID),
                            f"{RANDOM_LARGEST}__nnUNetPlans__3d_fullres", "fold_0")
    interrupted = {"hit": killed.hit, "returncode": killed.returncode,
                   "latest": os.path.isfile(os.path.join(fold_dir, "checkpoint_latest.pth")),
                   "final": os.path.isfile(os.path.join(fold_dir, "checkpoint_final.pth")),
                   "steps": len(json.load(open(os.path.join(fold_dir, "pruning_log.json")))["steps"])}
    ws.run("nnUNetv2_train", *command[1:], "--c", extra_env={"nnUNet_results": env["nnUNet_results"]})
    return {"straight": straight, "fold_dir": fold_dir, "interrupted": interrupted}


def test_resume_mid_pruning_ends_with_the_same_architecture(trainings):
    """Interrupted after the first pruning step, resumed with --c: same result as an uninterrupted run."""
    runs = trainings.job("test_resume_mid_pruning_ends_with_the_same_architecture")
    straight, fold_dir = runs["straight"], runs["fold_dir"]
    interrupted = runs["interrupted"]
    assert interrupted["hit"] and interrupted["returncode"] == -signal.SIGKILL
    assert interrupted["latest"] and not interrupted["final"] and interrupted["steps"] >= 1
    resumed = torch.load(os.path.join(fold_dir, "checkpoint_final.pth"), map_location="cpu", weights_only=False)
    reference = torch.load(os.path.join(straight, "checkpoint_final.pth"), map_location="cpu", weights_only=False)
    shapes = lambda c: {k: tuple(v.shape) for k, v in c["network_weights"].items()}  # noqa: E731
    assert shapes(resumed) == shapes(reference)
    strip = lambda log: [{k: v for k, v in s.items() if k not in ("ema_pseudo_dice", "seconds")}  # noqa: E731
                         for s in log]
    assert strip(resumed["pruning"]["log"]) == strip(reference["pruning"]["log"])
    # the momentum buffers were carried through the interruption with the pruned shapes
    network, _ = build_from_checkpoint(os.path.dirname(fold_dir), resumed)
    state = resumed["optimizer_state"]["state"]
    parameters = list(network.parameters())
    assert len(state) >= len(parameters) - 2  # the lowest deep-supervision head has loss weight 0: no state
    assert all(state[i]["momentum_buffer"].shape == parameters[i].shape for i in state)


@background_job("test_export_and_find_best_configuration", order=-1)
def _export(trainings, folder) -> dict:
    shared(trainings, STAMP)
    ws = trainings.pipeline.ws
    archive = str(folder / "model.zip")
    ws.run("nnUNetv2_export_model_to_zip", "-d", str(DATASET_ID), "-o", archive, "-c", "3d_fullres", "-tr", STAMP,
           "-f", "0")
    ws.run("nnUNetv2_find_best_configuration", str(DATASET_ID), "-c", "3d_fullres", "-tr", STAMP, "-f", "0",
           "--disable_ensembling", "-np", "1")
    return {"archive": archive}


def test_export_and_find_best_configuration(planned_dataset, trainings):
    ws = planned_dataset
    runs = trainings.job("test_export_and_find_best_configuration")
    assert os.path.getsize(runs["archive"]) > 0
    inference = os.path.join(ws.results, ws.dataset_name(DATASET_ID), "inference_information.json")
    assert STAMP in open(inference).read()
