"""The README's promise, enforced: every misuse ends in one line on stderr, exit status 2, nothing changed.

Each row runs a command (``nnunet-pruning ...`` or ``nnUNetv2_train`` with a trainer of this package) in a
workspace that already holds a planned dataset and trained models (a copy of the session's, its own), then
checks that stderr carries exactly one ``nnunet-pruning: error: ...`` line (and no traceback), that the exit
status is 2, and that no file that existed before was changed or removed. The rows run in the background
(tests/e2e/conftest.py), in-process (``cli.main`` and nnU-Net's ``run_training_entry``, all in one process:
misuse_driver.py); rows with their own environment and a few others (SUBPROCESS_TOO) run as real commands, so
that a real process of each kind is seen to print nothing else and exit with 2.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from .conftest import DATASET_ID, FLAT_TRAINER, background_job, private_workspace

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
    ("compare-different-datasets", ["nnunet-pruning", "compare", "{stock_folder}", "{other_dataset}", "-f", "0",
                                    "-o", "{earlier}"],
     ("different datasets", "Dataset952_Other", "compare models of one dataset")),
    ("compare-missing-validation", ["nnunet-pruning", "compare", "{stock_folder}", "{lacking}", "-f", "0", "-o",
                                    "{new}"], (f"model {FLAT_TRAINER} fold 0 has no validation/summary.json", "--val")),
    ("compare-unknown-model", ["nnunet-pruning", "compare", STOCK, "nnUNetTrainerNope", "-d", D, "-c", C, "-o",
                               "{new}"], "no model nnUNetTrainerNope__nnUNetPlans"),
    ("demo-unknown-trainer", ["nnunet-pruning", "demo", "--output", "{new}", "--trainers", "nnUNetTrainer",
                              "nnUNetTrainerNope"], "trainer nnUNetTrainerNope not found"),
    ("demo-output-is-a-file", ["nnunet-pruning", "demo", "--output", "{file}"], "is a file, not a folder"),
    ("demo-trainer-twice", ["nnunet-pruning", "demo", "--output", "{new}", "--trainers", STOCK, STOCK],
     "a trainer is listed twice"),
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
    ("benchmark-cascade", ["nnunet-pruning", "benchmark", "--output", "{new}", "-c", "3d_cascade_fullres"],
     "invalid choice"),
    ("trainers-unknown-option", ["nnunet-pruning", "trainers", "--bogus"], "unrecognized arguments"),
    ("pool-dice-no-results", ["nnunet-pruning", "pool-dice", "{new}"], "no benchmark results.json there"),
    ("pool-dice-one-trainer", ["nnunet-pruning", "pool-dice", "{scratch}", "--trainers", STOCK],
     "--trainers needs at least two trainers"),
    ("pool-dice-not-results", ["nnunet-pruning", "pool-dice", "{file}"], "not a readable results.json"),
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
    # a dataset too small for nnU-Net's 5 folds: a preprocessed copy with 3 of its cases and no splits_final.json
    ("train-too-few-cases", ["nnUNet_preprocessed={few}", "nnUNet_results={few_results}", "nnUNetv2_train", D, C,
                             "1", "-tr", FLAT_TRAINER, "-device", "cpu"],
     "has 3 training cases, too few for nnU-Net's 5-fold split (fold 1)"),
    # (a bad nnUNet_pruning_channels_last stops before nnU-Net makes anything: tests/trainers/test_memory_format.py)
    ("count-malformed-trainer-name", ["nnunet-pruning", "count", D, "-c", C, "-tr",
                                      "nnUNetTrainerSTAMP_250epochs_keep10"], "comes too late"),
]
# (a corrupt -pretrained_weights file is one line too: tests/trainers/test_guards.py, in-process; the two
# nnUNetv2_train rows above prove the one line through nnU-Net's own process for both kinds of trainer error)
if not torch.cuda.is_available():
    MISUSES.append(("compare-cuda-without-gpu", ["nnunet-pruning", "compare", STOCK, FLAT_TRAINER, "-d", D, "-c", C,
                                                 "-o", "{new}", "--time", "--device", "cuda"], "CUDA is not available"))
    MISUSES.append(("benchmark-cuda-without-gpu", ["nnunet-pruning", "benchmark", "--output", "{new}", "--device",
                                                   "cuda"], "CUDA is not available"))
    MISUSES.append(("demo-cuda-without-gpu", ["nnunet-pruning", "demo", "--output", "{new}", "--device", "cuda"],
                    "CUDA is not available"))


#: rows that also run as real subprocesses: the process's whole stderr is the one line (nothing printed on import)
SUBPROCESS_TOO = ("count-unknown-trainer",)


def test_every_subcommand_has_misuse_rows():
    """A new subcommand of the CLI (or nnUNetv2_train with a trainer of ours) must come with its misuse rows."""
    from nnunet_pruning.app.cli import build_parser

    subcommands = next(a for a in build_parser()._actions if a.dest == "command").choices
    covered = {cmd[1] if cmd[0] == "nnunet-pruning" else cmd[0] for cmd in (_split_env(c)[1] for _, c, _ in MISUSES)}
    assert covered == set(subcommands) | {"nnUNetv2_train"}


def _check(result: dict, words, command: list[str], in_process: bool) -> None:
    errors = [line for line in result["stderr"].splitlines() if line.startswith("nnunet-pruning: error: ")]
    assert result["returncode"] == 2, result["stderr"][-3000:]
    assert len(errors) == 1, result["stderr"][-3000:]
    for word in (words,) if isinstance(words, str) else words:
        assert word in errors[0], errors[0]
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
    """The command's words with the fixture's paths filled in (``NAME=value`` words removed)."""
    return [arg.format(**paths) for arg in _split_env(command)[1]]


def _subprocess_only(row_id: str, command: list[str]) -> bool:
    return bool(_split_env(command)[0])  # its own environment: nnU-Net reads its paths once, at import


def _prepare(ws, folder) -> dict:
    """The files the rows name: scratch files, and copies of models and data made unusable in one way each."""
    scratch = folder / "scratch"
    scratch.mkdir()
    (scratch / "a_file").write_text("keep me")
    (scratch / "corrupt.pth").write_bytes(b"not a checkpoint")
    (scratch / "earlier").mkdir()
    (scratch / "earlier" / "report.md").write_text("an earlier report")
    stock = ws.model_folder(DATASET_ID, STOCK)
    other = scratch / "other" / os.path.basename(stock)  # stock under another dataset's name
    shutil.copytree(stock, other)
    plans = json.loads((other / "plans.json").read_text())
    (other / "plans.json").write_text(json.dumps(dict(plans, dataset_name="Dataset952_Other")))
    flat = ws.model_folder(DATASET_ID, FLAT_TRAINER)
    lacking = scratch / "lacking" / os.path.basename(flat)  # a model without its validation
    shutil.copytree(flat, lacking)
    os.remove(lacking / "fold_0" / "validation" / "summary.json")
    name = ws.dataset_name(DATASET_ID)
    few = scratch / "few" / "nnUNet_preprocessed"  # 3 of the 5 cases, no splits_final.json
    shutil.copytree(os.path.join(ws.preprocessed, name), few / name, ignore=shutil.ignore_patterns("splits_final.json"))
    data = few / name / "nnUNetPlans_3d_fullres"
    cases = sorted({f.split(".")[0].removesuffix("_seg") for f in os.listdir(data)})
    assert len(cases) == 5
    for f in os.listdir(data):
        if f.split(".")[0].removesuffix("_seg") not in cases[:3]:
            os.remove(data / f)
    stamp = ws.model_folder(DATASET_ID, STAMP)
    return {"file": str(scratch / "a_file"), "corrupt": str(scratch / "corrupt.pth"),
            "pruned": os.path.join(stamp, "fold_0", "checkpoint_final.pth"), "stock_folder": stock,
            "checkpoint": os.path.join(stock, "fold_0", "checkpoint_final.pth"), "new": str(scratch / "never_created"),
            "scratch": str(scratch), "earlier": str(scratch / "earlier"), "other_dataset": str(other),
            "lacking": str(lacking), "few": str(few), "few_results": str(scratch / "few" / "results")}


@background_job("test_misuse_is_one_line_exit_two_and_changes_nothing", order=-2)
def _rows(trainings, folder) -> dict:
    """Every row (in the background): in-process in ONE fresh process whose environment is the private
    workspace's, and the subprocess rows as real commands. Returns {"in_process": {id: result},
    "subprocess": {id: result}}."""
    ws = private_workspace(trainings, folder, (STOCK, STAMP, FLAT_TRAINER))
    paths = _prepare(ws, folder)
    roots = [ws.root, paths["scratch"]]
    rows = {row_id: _argv(cmd, paths) for row_id, cmd, _ in MISUSES if not _subprocess_only(row_id, cmd)}
    (folder / "rows.json").write_text(json.dumps({"rows": rows, "roots": roots, "new": paths["new"]}))
    result = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "misuse_driver.py"),
                             str(folder / "rows.json"), str(folder / "results.json")], env=ws.env, cwd=ws.root,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    in_process = json.loads((folder / "results.json").read_text())
    separate = {row_id: _run_subprocess(ws, paths, roots, cmd) for row_id, cmd, _ in MISUSES
                if _subprocess_only(row_id, cmd) or row_id in SUBPROCESS_TOO}
    return {"in_process": in_process, "subprocess": separate}


def _run_subprocess(ws, paths: dict, roots: list[str], command: list[str]) -> dict:
    env, command = _split_env(command)
    argv = [ws.executable(command[0])] + _argv(command, paths)[1:]
    before = {k: v for root in roots for k, v in _snapshot(root).items()}
    result = subprocess.run(argv, env={**ws.env, **_argv_env(env, paths)}, cwd=ws.root, capture_output=True,
                            text=True, timeout=600)
    after = {k: v for root in roots for k, v in _snapshot(root).items()}
    return {"returncode": result.returncode, "stderr": result.stderr, "before": _jsonable(before),
            "after": _jsonable(after), "new_exists": os.path.exists(paths["new"])}


def _argv_env(env: dict, paths: dict) -> dict:
    return {k: v.format(**paths) for k, v in env.items()}


def _jsonable(snapshot: dict) -> dict:
    return {k: None if v is None else list(v) for k, v in snapshot.items()}


@pytest.fixture(scope="module")
def results(trainings) -> dict:
    return trainings.job("test_misuse_is_one_line_exit_two_and_changes_nothing")


@pytest.mark.parametrize("row_id, command, words", MISUSES, ids=[m[0] for m in MISUSES])
def test_misuse_is_one_line_exit_two_and_changes_nothing(results, row_id, command, words):
    if not _subprocess_only(row_id, command):
        _check(results["in_process"][row_id], words, command, in_process=True)
    if _subprocess_only(row_id, command) or row_id in SUBPROCESS_TOO:
        _check(results["subprocess"][row_id], words, _split_env(command)[1], in_process=False)
