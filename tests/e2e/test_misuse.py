"""The README's promise, enforced: every misuse ends in one line on stderr, exit status 2, nothing changed.

Each row runs a command (``nnunet-pruning ...`` or ``nnUNetv2_train`` with a trainer of this package) in a
workspace that already holds a planned dataset and trained models, then checks that stderr carries exactly one
``nnunet-pruning: error: ...`` line (and no traceback), that the exit status is 2, and that no file that
existed before was changed or removed. ``nnunet-pruning`` rows run in-process (``cli.main``, all in one
process: misuse_driver.py); ``nnUNetv2_train`` rows and a few others (SUBPROCESS_TOO) run as real commands.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from .conftest import DATASET_ID, FLAT_TRAINER

pytestmark = pytest.mark.e2e

STOCK, STAMP = "nnUNetTrainerStock_smoke", "nnUNetTrainerSTAMP_smoke"
D, C = str(DATASET_ID), "3d_fullres"


def _snapshot(root: str) -> dict:
    """Every file (size, mtime) and every folder (None) under ``root``."""
    found = {}
    for d, dirs, files in os.walk(root):
        found.update({os.path.join(d, sub): None for sub in dirs})
        found.update({os.path.join(d, f): (os.path.getsize(os.path.join(d, f)), os.path.getmtime(os.path.join(d, f)))
                      for f in files})
    return found


@pytest.fixture(scope="module")
def misuse_ws(trained_flat, train, trainings, tmp_path_factory):
    ws = trained_flat
    train(STOCK)
    stamp_fold = train(STAMP)
    trainings.wait_all()  # nothing in the background may change the workspace while "nothing changed" is checked
    scratch = tmp_path_factory.mktemp("misuse")
    (scratch / "a_file").write_text("keep me")
    (scratch / "corrupt.pth").write_bytes(b"not a checkpoint")
    paths = {
        "file": str(scratch / "a_file"),
        "corrupt": str(scratch / "corrupt.pth"),
        "pruned": os.path.join(stamp_fold, "checkpoint_final.pth"),
        "stock_folder": ws.model_folder(DATASET_ID, STOCK),
        "checkpoint": os.path.join(ws.model_folder(DATASET_ID, STOCK), "fold_0", "checkpoint_final.pth"),
        "new": str(scratch / "never_created"),
        "scratch": str(scratch),
    }
    return ws, paths


# (id, command, words the one line must contain); {name} is filled from the fixture's paths
MISUSES = [
    ("env-base-without-value", ["nnunet-pruning", "env", "--base"], "expected one argument"),
    ("env-unknown-option", ["nnunet-pruning", "env", "--bogus"], "unrecognized arguments"),
    ("make-dataset-id-0", ["nnunet-pruning", "make-dataset", "--id", "0"], "out of range"),
    ("make-dataset-existing-id", ["nnunet-pruning", "make-dataset", "--id", D], "already exists"),
    ("make-dataset-too-small", ["nnunet-pruning", "make-dataset", "--id", "960", "--size", "8"], "too small"),
    ("make-dataset-too-large", ["nnunet-pruning", "make-dataset", "--id", "960", "--size", "100000"], "too large"),
    ("make-dataset-name-with-slash", ["nnunet-pruning", "make-dataset", "--id", "960", "--name", "a/b"],
     "not usable as a folder name"),
    ("make-dataset-empty-name", ["nnunet-pruning", "make-dataset", "--id", "960", "--name", ""],
     "not usable as a folder name"),
    ("make-dataset-nan-spacing", ["nnunet-pruning", "make-dataset", "--id", "960", "--spacing", "nan", "1", "1"],
     "positive finite"),
    ("make-dataset-dim-4", ["nnunet-pruning", "make-dataset", "--dim", "4"], "invalid choice"),
    ("make-dataset-no-channels", ["nnunet-pruning", "make-dataset", "--id", "960", "--channels", "0"],
     "at least 1 input channel"),
    ("flat-plans-width-0", ["nnunet-pruning", "flat-plans", D, "--width", "0"], "from 1 to 1024"),
    ("flat-plans-width-huge", ["nnunet-pruning", "flat-plans", D, "--width", "100000"], "from 1 to 1024"),
    ("flat-plans-unknown-dataset", ["nnunet-pruning", "flat-plans", "999"], "unknown dataset 999"),
    ("flat-plans-unknown-plans", ["nnunet-pruning", "flat-plans", D, "--plans", "NoSuchPlans"], "not found"),
    ("flat-plans-plans-path", ["nnunet-pruning", "flat-plans", D, "--plans", "{file}"], "not a path"),
    ("count-missing-path", ["nnunet-pruning", "count", "./no/such/folder"], "does not exist"),
    ("count-checkpoint-file", ["nnunet-pruning", "count", "{checkpoint}"], "is a file; count takes"),
    ("count-without-configuration", ["nnunet-pruning", "count", D], "needs a configuration"),
    ("count-unknown-configuration", ["nnunet-pruning", "count", D, "-c", "3d_nope"],
     "configuration 3d_nope is not in"),
    ("count-unknown-trainer", ["nnunet-pruning", "count", D, "-c", C, "-tr", "nnUNetTrainerNope"],
     "trainer nnUNetTrainerNope not found"),
    ("count-unknown-checkpoint", ["nnunet-pruning", "count", "{stock_folder}", "--checkpoint", "nope.pth"],
     "no fold in"),
    ("compare-one-model", ["nnunet-pruning", "compare", STOCK, "-d", D, "-c", C], "at least two models"),
    ("compare-names-without-dataset", ["nnunet-pruning", "compare", STOCK, FLAT_TRAINER],
     "pass the dataset and configuration"),
    ("compare-output-is-a-file", ["nnunet-pruning", "compare", STOCK, FLAT_TRAINER, "-d", D, "-c", C, "-o", "{file}"],
     "is a file, not a folder"),
    ("compare-missing-images", ["nnunet-pruning", "compare", STOCK, FLAT_TRAINER, "-d", D, "-c", C, "-o", "{new}",
                                "--time", "./no/images"], "does not exist"),
    ("compare-zero-repeats", ["nnunet-pruning", "compare", STOCK, FLAT_TRAINER, "-d", D, "-c", C, "-o", "{new}",
                              "--time", "--repeats", "0"], "repeats and threads must be >= 1"),
    ("compare-missing-fold", ["nnunet-pruning", "compare", STOCK, FLAT_TRAINER, "-d", D, "-c", C, "-o", "{new}",
                              "-f", "3"], "has no checkpoint for fold 3"),
    ("compare-label-count", ["nnunet-pruning", "compare", STOCK, FLAT_TRAINER, "-d", D, "-c", C, "-o", "{new}",
                             "--labels", "a"], "1 labels for 2 models"),
    ("compare-unknown-model", ["nnunet-pruning", "compare", STOCK, "nnUNetTrainerNope", "-d", D, "-c", C, "-o",
                               "{new}"], "no model nnUNetTrainerNope__nnUNetPlans"),
    ("demo-unknown-trainer", ["nnunet-pruning", "demo", "--output", "{new}", "--trainers", "nnUNetTrainer",
                              "nnUNetTrainerNope"], "trainer nnUNetTrainerNope not found"),
    ("demo-output-is-a-file", ["nnunet-pruning", "demo", "--output", "{file}"], "is a file, not a folder"),
    ("demo-unknown-dataset", ["nnunet-pruning", "demo", "--output", "{new}", "-d", "999"],
     "dataset 999 is not in nnUNet_raw="),
    ("benchmark-synthetic-options-with-dataset", ["nnunet-pruning", "benchmark", "--output", "{new}", "-d", D,
                                                  "--size", "16"], "--size: options of the synthetic dataset"),
    ("benchmark-too-few-training-cases", ["nnunet-pruning", "benchmark", "--output", "{new}", "--train", "4"],
     "needs at least 5 training cases"),
    ("benchmark-one-trainer", ["nnunet-pruning", "benchmark", "--output", "{new}", "--trainers", STOCK],
     "at least two trainers"),
    ("benchmark-bad-fold", ["nnunet-pruning", "benchmark", "--output", "{new}", "--folds", "7"],
     "folds must be distinct values of 0-4"),
    ("benchmark-unknown-trainer", ["nnunet-pruning", "benchmark", "--output", "{new}", "--trainers", STOCK,
                                   "nnUNetTrainerNope"], "trainer nnUNetTrainerNope not found"),
    ("benchmark-reference-not-benchmarked", ["nnunet-pruning", "benchmark", "--output", "{new}", "--trainers", STOCK,
                                             STAMP, "--reference", "nnUNetTrainerFlatUNet"],
     "must be one of the trainers after the baseline"),
    ("benchmark-backend-without-timing", ["nnunet-pruning", "benchmark", "--output", "{new}", "--backend",
                                          "openvino", "--no-time"], "drop --no-time or --backend"),
    ("trainers-unknown-option", ["nnunet-pruning", "trainers", "--bogus"], "unrecognized arguments"),
    ("export-not-a-model-folder", ["nnunet-pruning", "export", "{scratch}", "-o", "{new}"],
     "is not a trained nnU-Net model folder"),
    ("export-missing-fold", ["nnunet-pruning", "export", "{stock_folder}", "-f", "3", "-o", "{new}"],
     "fold 3 of"),
    ("export-output-exists", ["nnunet-pruning", "export", "{stock_folder}", "-o", "{scratch}"],
     "exists; pass --overwrite"),
    ("predict-missing-input", ["nnunet-pruning", "predict", "-i", "./no/images", "-o", "{new}", "-m",
                               "{stock_folder}"], "input folder ./no/images not found"),
    ("predict-unknown-backend", ["nnunet-pruning", "predict", "-i", "{scratch}", "-o", "{new}", "-m", "{stock_folder}",
                                 "--backend", "tensorrt"], "invalid choice"),
    ("predict-missing-fold", ["nnunet-pruning", "predict", "-i", "{scratch}", "-o", "{new}", "-m", "{stock_folder}",
                              "-f", "3"], "has no checkpoint"),
    ("train-pruned-pretrained-weights", ["nnUNetv2_train", D, C, "3", "-tr", STAMP, "-device", "cpu",
                                         "-pretrained_weights", "{pruned}"], "holds a pruned network"),
    ("train-malformed-trainer-name", ["nnUNetv2_train", D, C, "3", "-tr", "nnUNetTrainerSTAMP_keep0", "-device",
                                      "cpu"], "trainer name nnUNetTrainerSTAMP_keep0 is malformed"),
    # refused after nnU-Net built the trainer (and made the fold folder, opened its log): nothing may remain
    ("train-unreachable-min-width", ["nnUNetv2_train", D, C, "3", "-tr", "nnUNetTrainerSTAMP_minw100000_smoke",
                                     "-device", "cpu"], "target unreachable"),
    # (a bad nnUNet_pruning_channels_last stops before nnU-Net makes anything: tests/trainers/test_memory_format.py)
    ("count-malformed-trainer-name", ["nnunet-pruning", "count", D, "-c", C, "-tr",
                                      "nnUNetTrainerSTAMP_250epochs_keep10"], "comes too late"),
]
# (a corrupt -pretrained_weights file is one line too: tests/trainers/test_guards.py, in-process; the two
# nnUNetv2_train rows above prove the one line through nnU-Net's own process for both kinds of trainer error)
if not torch.cuda.is_available():
    MISUSES.append(("compare-cuda-without-gpu", ["nnunet-pruning", "compare", STOCK, FLAT_TRAINER, "-d", D, "-c", C,
                                                 "-o", "{new}", "--time", "--device", "cuda"], "CUDA is not available"))


#: rows that also run as real subprocesses: the process's whole stderr is the one line (nothing printed on import)
SUBPROCESS_TOO = ("count-unknown-trainer",)


def test_every_subcommand_has_misuse_rows():
    """A new subcommand of the CLI (or nnUNetv2_train with a trainer of ours) must come with its misuse rows."""
    from nnunet_pruning.app.cli import build_parser

    subcommands = next(a for a in build_parser()._actions if a.dest == "command").choices
    covered = {cmd[1] if cmd[0] == "nnunet-pruning" else cmd[0] for cmd in (_split_env(c)[1] for _, c, _ in MISUSES)}
    assert covered == set(subcommands) | {"nnUNetv2_train"}


def _check(result: dict, words: str, command: list[str], in_process: bool) -> None:
    errors = [line for line in result["stderr"].splitlines() if line.startswith("nnunet-pruning: error: ")]
    assert result["returncode"] == 2, result["stderr"][-3000:]
    assert len(errors) == 1 and words in errors[0], result["stderr"][-3000:]
    assert "Traceback" not in result["stderr"] and result["stderr"].strip().splitlines()[-1] == errors[0]
    if command[0] == "nnunet-pruning" and not in_process:  # our own commands print nothing else on stderr
        assert result["stderr"].strip() == errors[0], result["stderr"][-3000:]
    before, after = result["before"], result["after"]
    assert {k: after.get(k) for k in before} == before, "an existing file changed"
    new = sorted(set(after) - set(before))
    assert new == [], new  # nnUNetv2_train too: a refused start removes the fold folder and log nnU-Net made
    assert not result["new_exists"]


def _split_env(command: list[str]) -> tuple[dict, list[str]]:
    """``NAME=value`` words before the command: its environment."""
    count = next(i for i, word in enumerate(command) if "=" not in word)
    return dict(word.split("=", 1) for word in command[:count]), command[count:]


def _argv(command: list[str], paths: dict) -> list[str]:
    return [arg.format(**paths) for arg in command]


@pytest.fixture(scope="module")
def in_process_results(misuse_ws, tmp_path_factory) -> dict:
    """Every ``nnunet-pruning`` row run in-process by ``cli.main``, one after the other, in ONE fresh process whose
    environment is the workspace's (nnU-Net reads its paths once, at import): {row id: result}."""
    ws, paths = misuse_ws
    rows = {row_id: _argv(cmd, paths)[1:] for row_id, cmd, _ in MISUSES if cmd[0] == "nnunet-pruning"}
    folder = tmp_path_factory.mktemp("misuse_driver")
    (folder / "rows.json").write_text(json.dumps({"rows": rows, "roots": [ws.root, paths["scratch"]],
                                                  "new": paths["new"]}))
    result = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "misuse_driver.py"),
                             str(folder / "rows.json"), str(folder / "results.json")], env=ws.env, cwd=ws.root,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((folder / "results.json").read_text())


def _run_subprocess(ws, paths: dict, command: list[str]) -> dict:
    env, command = _split_env(command)
    argv = [ws.executable(command[0])] + _argv(command, paths)[1:]
    before = {**_snapshot(ws.root), **_snapshot(paths["scratch"])}
    result = subprocess.run(argv, env={**ws.env, **env}, cwd=ws.root, capture_output=True, text=True, timeout=600)
    after = {**_snapshot(ws.root), **_snapshot(paths["scratch"])}
    return {"returncode": result.returncode, "stderr": result.stderr, "before": before, "after": after,
            "new_exists": os.path.exists(paths["new"])}


def _jsonable(snapshot: dict) -> dict:
    return {k: None if v is None else list(v) for k, v in snapshot.items()}


@pytest.mark.parametrize("row_id, command, words", MISUSES, ids=[m[0] for m in MISUSES])
def test_misuse_is_one_line_exit_two_and_changes_nothing(misuse_ws, in_process_results, row_id, command, words):
    ws, paths = misuse_ws
    if command[0] == "nnunet-pruning":
        _check(in_process_results[row_id], words, command, in_process=True)
    if command[0] != "nnunet-pruning" or row_id in SUBPROCESS_TOO:
        result = _run_subprocess(ws, paths, command)
        result["before"], result["after"] = _jsonable(result["before"]), _jsonable(result["after"])
        _check(result, words, _split_env(command)[1], in_process=False)
