"""The one pipeline: make (or take) a dataset, plan it, train folds, predict and evaluate the test cases.

``demo``, ``benchmark``, ``scripts/benchmark_training_time.py`` and the end-to-end tests' fixtures all run
it. Every step is a stock command (``nnunet-pruning make-dataset``, ``nnUNetv2_plan_and_preprocess``,
``nnUNetv2_train``, ``nnUNetv2_predict``, ``nnUNetv2_evaluate_folder``) in a subprocess, as a user types it;
each is skipped when its result is complete, so an interrupted run resumes where it stopped:

- the dataset: its ``dataset.json`` (written last by make-dataset); one made with other settings is refused,
  naming the setting;
- planning: a marker file this pipeline writes after ``nnUNetv2_plan_and_preprocess`` exits 0 (nnU-Net's
  plans file is written before preprocessing ends, so it is no marker); a dataset taken with ``-d`` that
  already has plans is used as it is;
- training: the fold's ``checkpoint_final.pth``;
- predictions: their ``summary.json``, newer than the checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from nnunet_pruning.app.workspace import NnUNetWorkspace
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.files import atomic_write_text, write_json

__all__ = ["SyntheticDataset", "Pipeline", "TRAINING_PROGRESS", "TRAIN_SECONDS", "DEVICES", "CONFIGURATIONS",
           "check_device", "require_test_cases"]

#: nnU-Net log lines worth showing while a model trains
TRAINING_PROGRESS = re.compile(r": (Epoch \d+|Pseudo dice|pruning step|Mean Validation Dice)")


@dataclass(frozen=True)
class SyntheticDataset:
    """The synthetic dataset a pipeline makes when its workspace has none (``nnunet-pruning make-dataset``)."""

    dataset_id: int
    name: str = "SyntheticShapes"
    num_train: int = 10
    num_test: int = 4
    size: int = 32
    seed: int = 0
    task: str = "shapes"

    def arguments(self) -> list[str]:
        return ["--id", str(self.dataset_id), "--name", self.name, "--train", str(self.num_train), "--test",
                str(self.num_test), "--size", str(self.size), "--seed", str(self.seed), "--task", self.task]

    def differences(self, dataset_json: dict) -> list[str]:
        """The settings (as ``--option value``) in which a made dataset differs from this one."""
        made = dataset_json.get("generator", {})
        shape = made.get("shape") or [None]
        have = {"--train": dataset_json.get("numTraining"), "--test": made.get("num_test"),
                "--size": shape[0] if len(set(shape)) == 1 else "x".join(map(str, shape)),
                "--seed": made.get("seed"), "--task": made.get("task", "shapes")}
        want = {"--train": self.num_train, "--test": self.num_test, "--size": self.size, "--seed": self.seed,
                "--task": self.task}
        return [f"{k} {have[k]} (asked: {want[k]})" for k in want if have[k] != want[k]]


class Pipeline:
    """One dataset of one workspace, driven step by step with the stock commands.

    Args:
        ws: the workspace (its nnU-Net folders and environment).
        dataset_id: the dataset's id.
        log: append every command and its output to this file (default ``ws.root/commands.log``).
        say: progress lines go here (default: none).
        configuration: nnU-Net configuration to plan, train and predict (default 3d_fullres; one of
            :data:`CONFIGURATIONS`); its test predictions go to ``predictions/`` (3d_fullres) or
            ``predictions_<configuration>/``.
        device: what ``nnUNetv2_train`` and ``nnUNetv2_predict`` run on (their ``-device``: cpu, cuda or mps;
            default cpu); :func:`check_device` first.
    """

    def __init__(self, ws: NnUNetWorkspace, dataset_id: int, log: str | None = None,
                 say: Callable[[str], None] | None = None, configuration: str = "3d_fullres", device: str = "cpu"):
        if configuration not in CONFIGURATIONS:
            raise PruningError(f"configuration {configuration!r} is not one of {', '.join(CONFIGURATIONS)} (the "
                               f"cascade's second stage needs the first one's predictions: train it with "
                               f"nnUNetv2_train)")
        self.ws, self.dataset_id, self.configuration, self.device = ws, dataset_id, configuration, device
        self.log = log or os.path.join(ws.root, "commands.log")
        self.say = say or (lambda line: None)

    # ---- the dataset ----
    @property
    def name(self) -> str:
        return self.ws.dataset_name(self.dataset_id)

    @property
    def raw_folder(self) -> str:
        return os.path.join(self.ws.raw, self.name)

    def dataset_json(self) -> dict:
        with open(os.path.join(self.raw_folder, "dataset.json")) as f:
            return json.load(f)

    def make_dataset(self, spec: SyntheticDataset) -> None:
        """Make the synthetic dataset unless the workspace has it; refuse one made with other settings."""
        from nnunet_pruning.adapter.datasets import folders_with_id

        found = folders_with_id(self.ws.raw, self.dataset_id)
        if found and not os.path.isfile(os.path.join(self.ws.raw, found[0], "dataset.json")):
            found = []  # interrupted before make-dataset finished (it writes dataset.json last): make it again
        if not found:
            self.ws.run("nnunet-pruning", "make-dataset", *spec.arguments(), "--overwrite", log=self.log)
        differences = spec.differences(self.dataset_json())
        if differences:
            raise PruningError(f"{self.ws.root} holds dataset {self.name} made with {', '.join(differences)}; "
                               f"pass the settings it was made with, or another output folder")

    def require_test_cases(self) -> None:
        """Test Dice needs held-out cases with references: ``imagesTs`` and ``labelsTs``."""
        require_test_cases(self.ws.raw, self.dataset_id)

    @classmethod
    def of_user_dataset(cls, output: str, dataset_id: int, threads: int = 2, say=None,
                        device: str = "cpu", configuration: str = "3d_fullres") -> "Pipeline":
        """A dataset of the user's nnU-Net folders (``$nnUNet_raw`` ...); checked before ``output`` is created."""
        from nnunet_pruning.adapter.environment import require_path_variable

        require_test_cases(require_path_variable("nnUNet_raw"), dataset_id)
        return cls(NnUNetWorkspace.from_environment(output, threads), dataset_id, say=say, device=device,
                   configuration=configuration)

    # ---- planning ----
    def _plan_marker(self, plans: str) -> str:
        return os.path.join(self.ws.root, ".pipeline", f"planned_{self.name}_{plans}_{self.configuration}")

    def plans_file(self, plans: str = "nnUNetPlans") -> str:
        return os.path.join(self.ws.preprocessed, self.name, f"{plans}.json")

    def plan(self, processes: int = 2, planner: str | None = None, plans: str = "nnUNetPlans",
             trust_existing: bool = False) -> dict:
        """Plan and preprocess unless done; returns the plans.

        ``trust_existing``: a dataset the user brought (``-d``) and planned before counts as planned.
        """
        marker = self._plan_marker(plans)
        existing = self._read_plans(plans) if trust_existing and os.path.isfile(self.plans_file(plans)) else None
        done = os.path.isfile(marker) or (existing is not None and self._preprocessed(existing))
        if not done and existing is not None and self.configuration in existing["configurations"]:
            # the user's own plans, without this configuration's data: preprocess it, keep the plans as they are
            self.say(f"preprocessing {self.name} ({self.configuration}) with its plans {plans}")
            self.ws.run("nnUNetv2_preprocess", "-d", str(self.dataset_id), "-plans_name", plans, "-c",
                        self.configuration, "-np", str(processes), log=self.log)
            done = True
        if not done:
            self.say(f"planning and preprocessing {self.name} ({self.configuration})")
            command = ["nnUNetv2_plan_and_preprocess", "-d", str(self.dataset_id), "-c", self.configuration, "-np",
                       str(processes), "-npfp", str(processes)]
            if planner:
                command += ["-pl", planner]
            # nnU-Net's planner calls torch.set_num_threads(nnUNet_n_proc_DA): it must be >= 1 here
            self.ws.run(*command, extra_env={"nnUNet_n_proc_DA": str(processes)}, log=self.log)
            os.makedirs(os.path.dirname(marker), exist_ok=True)
            atomic_write_text(time.strftime("%Y-%m-%d %H:%M:%S"), marker)
        found = self._read_plans(plans)
        if self.configuration not in found["configurations"]:
            why = {"3d_lowres": ": it plans 3d_lowres only for large images",
                   "3d_fullres": ": a dataset of 2D images has 2d only"}.get(self.configuration, "")
            raise PruningError(f"the plans {plans} of {self.name} have no configuration {self.configuration} (nnU-Net "
                               f"made {', '.join(found['configurations'])}{why}); choose one of those with -c")
        return found

    def _read_plans(self, plans: str) -> dict:
        with open(self.plans_file(plans)) as f:
            found = json.load(f)
        if not isinstance(found, dict) or not isinstance(found.get("configurations"), dict):
            raise PruningError(f"{self.plans_file(plans)} has no configurations: not nnU-Net plans (plan the dataset "
                               f"again with nnUNetv2_plan_and_preprocess)")
        return found

    def _preprocessed(self, plans: dict) -> bool:
        """Whether ``plans`` have this configuration and its preprocessed data folder exists."""
        configuration = plans["configurations"].get(self.configuration)
        return configuration is not None and os.path.isdir(os.path.join(
            self.ws.preprocessed, self.name,
            configuration.get("data_identifier", f"{plans.get('plans_name', 'nnUNetPlans')}_{self.configuration}")))

    # ---- training, prediction, evaluation ----
    def model_folder(self, trainer: str, plans: str = "nnUNetPlans") -> str:
        return self.ws.model_folder(self.dataset_id, trainer, plans, self.configuration)

    def fold_folder(self, trainer: str, fold, plans: str = "nnUNetPlans") -> str:
        return os.path.join(self.model_folder(trainer, plans), f"fold_{fold}")

    def train(self, trainer: str, fold=0, *extra: str, plans: str = "nnUNetPlans", progress=None,
              extra_env: dict | None = None) -> str:
        """``nnUNetv2_train`` unless the fold has its ``checkpoint_final.pth``; returns the fold folder.

        The training's wall time is kept beside it (``pipeline_train_seconds.json``)."""
        fold_dir = self.fold_folder(trainer, fold, plans)
        if not self._trained(fold_dir):
            self.say(f"training {trainer} fold {fold} ...")
            started = time.time()
            # --c: an interrupted run goes on from its last checkpoint (nnU-Net starts afresh when there is none;
            # it refuses --c beside -pretrained_weights, which only a start can take)
            command = ["nnUNetv2_train", str(self.dataset_id), self.configuration, str(fold), "-tr", trainer,
                       "-device", self.device] + ([] if "-pretrained_weights" in extra else ["--c"])
            if plans != "nnUNetPlans":
                command += ["-p", plans]
            self.ws.run(*command, *extra, log=self.log, progress=progress,
                        extra_env={**self._augmentation_env(), **(extra_env or {})})
            write_json({"seconds": time.time() - started}, os.path.join(fold_dir, TRAIN_SECONDS), indent=None)
        return fold_dir

    def _augmentation_env(self) -> dict:
        """On the CPU the workspace's data augmentation runs in the training process (``nnUNet_n_proc_DA=0``: no
        workers to compete for 2 cores); on a GPU it gets the worker processes nnU-Net would start (yours, if you
        set ``nnUNet_n_proc_DA``), or the GPU would wait for them."""
        if self.device == "cpu":
            return {}
        from nnunetv2.utilities.default_n_proc_DA import get_allowed_n_proc_DA

        return {"nnUNet_n_proc_DA": str(get_allowed_n_proc_DA())}

    @staticmethod
    def _trained(fold_dir: str) -> bool:
        """Whether the fold is trained: the pipeline's own marker (written after ``nnUNetv2_train`` succeeded), or a
        ``checkpoint_final.pth`` that loads (a model trained outside the pipeline). One that does not load is what
        an interrupted run left mid-write: it is moved aside (``.interrupted``) and the fold trains again."""
        from nnunet_pruning.adapter.checkpoints import load_checkpoint_file

        final = os.path.join(fold_dir, "checkpoint_final.pth")
        if os.path.isfile(os.path.join(fold_dir, TRAIN_SECONDS)) and os.path.isfile(final):
            return True
        if not os.path.isfile(final):
            return False
        try:
            load_checkpoint_file(final)
            return True
        except PruningError:
            os.replace(final, final + ".interrupted")
            return False

    def train_seconds(self, trainer: str, fold) -> float | None:
        path = os.path.join(self.fold_folder(trainer, fold), TRAIN_SECONDS)
        if not os.path.isfile(path):
            return None
        with open(path) as f:
            return json.load(f)["seconds"]

    @property
    def predictions_root(self) -> str:
        """Every trainer's and fold's test predictions (one folder per configuration)."""
        return os.path.join(self.ws.root, "predictions" if self.configuration == "3d_fullres" else
                            f"predictions_{self.configuration}")

    def predictions_folder(self, trainer: str, fold) -> str:
        return os.path.join(self.predictions_root, trainer, f"fold_{fold}")

    def predict_and_evaluate(self, trainer: str, fold) -> dict:
        """The test cases predicted by one fold (``nnUNetv2_predict``, no mirroring; ``-npp 0 -nps 0``: in its own
        process, no worker processes to start for a few cases) and scored by ``nnUNetv2_evaluate_folder``, unless
        a newer ``summary.json`` exists; returns that summary."""
        predictions = self.predictions_folder(trainer, fold)
        summary_path = os.path.join(predictions, "summary.json")
        if not self.scored(trainer, fold):
            self.say(f"predicting and evaluating {trainer} fold {fold} on the test cases")
            self.ws.run("nnUNetv2_predict", "-i", os.path.join(self.raw_folder, "imagesTs"), "-o", predictions,
                        "-d", str(self.dataset_id), "-c", self.configuration, "-tr", trainer, "-f", str(fold),
                        "-device", self.device, "--disable_tta", "-npp", "0", "-nps", "0", log=self.log)
            folder = self.model_folder(trainer)
            # summary.json appears only complete: it marks the step done
            partial = summary_path[:-len(".json")] + ".partial.json"
            self.ws.run("nnUNetv2_evaluate_folder", os.path.join(self.raw_folder, "labelsTs"), predictions,
                        "-djfile", os.path.join(folder, "dataset.json"), "-pfile",
                        os.path.join(folder, "plans.json"), "-o", partial, log=self.log)
            os.replace(partial, summary_path)
        with open(summary_path) as f:
            return json.load(f)

    def scored(self, trainer: str, fold) -> bool:
        """Whether the fold's test predictions are scored: a ``summary.json`` newer than its checkpoint."""
        checkpoint = os.path.join(self.fold_folder(trainer, fold), "checkpoint_final.pth")
        summary = os.path.join(self.predictions_folder(trainer, fold), "summary.json")
        return os.path.isfile(checkpoint) and os.path.isfile(summary) and \
            os.path.getmtime(summary) > os.path.getmtime(checkpoint)

    def scored_runs(self) -> list[tuple[str, str]]:
        """``(trainer, fold)`` of every run in this workspace whose test predictions are scored (by any command
        of this pipeline: demo or benchmark, any trainer, any fold), sorted."""
        root = self.predictions_root
        found = []
        trainers = sorted(os.listdir(root)) if os.path.isdir(root) else []
        for trainer in [t for t in trainers if os.path.isdir(os.path.join(root, t))]:
            for entry in sorted(os.listdir(os.path.join(root, trainer))):
                fold = entry[len("fold_"):]
                if entry.startswith("fold_") and fold and self.scored(trainer, fold):
                    found.append((trainer, fold))
        return found

    def test_run(self, trainer: str, fold, progress=None) -> dict:
        """Train (unless finished), predict and evaluate one fold of one trainer: its :meth:`run_record`."""
        self.train(trainer, fold, progress=progress)
        return self.run_record(trainer, fold, self.predict_and_evaluate(trainer, fold))

    def test_runs(self, todo: list[tuple[str, str]], name: Callable[[str, str], str], progress=None,
                  clock: Callable[[], float] = time.time) -> list[dict]:
        """:meth:`test_run` of every ``(trainer, fold)`` in order; after each, its test Dice (``name(trainer, fold)``
        says whose), how many runs are done and, from the pace of the runs made now, the time left."""
        pending = {run for run in todo if not self.scored(*run)}  # to train and/or predict; the rest is read back
        if len(pending) < len(todo):
            self.say(f"{len(todo) - len(pending)} of the {len(todo)} runs scored before: reused")
        runs, spent, made = [], 0.0, 0
        for i, (trainer, fold) in enumerate(todo):
            started = clock()
            runs.append(self.test_run(trainer, fold, progress=progress))
            if (trainer, fold) in pending:
                spent, made = spent + clock() - started, made + 1
            left = sum(1 for run in todo[i + 1:] if run in pending)
            pace = f", about {spent / made * left / 60:.0f} min left" if made and left else ""
            self.say(f"{name(trainer, fold)}: test Dice {runs[-1]['test_dice']:.3f} (run {i + 1} of {len(todo)}{pace})")
        return runs

    def run_record(self, trainer: str, fold, summary: dict | None = None) -> dict:
        """The record of a scored run (:meth:`scored`; ``summary``: its ``summary.json``, read here if not given):
        test Dice overall and per class, params, GFLOPs, training seconds, whether the pruning target was reached."""
        from nnunet_pruning.adapter.pruning_logs import read_pruning_log, target_status
        from nnunet_pruning.app.count import count_model_folder

        fold_dir = self.fold_folder(trainer, fold)
        if summary is None:
            with open(os.path.join(self.predictions_folder(trainer, fold), "summary.json")) as f:
                summary = json.load(f)
        counted = count_model_folder(self.model_folder(trainer), "checkpoint_final.pth", [str(fold)])
        counted = counted["networks"][f"fold_{fold}"]
        status = target_status(read_pruning_log(fold_dir))
        return {"trainer": trainer, "fold": str(fold), "test_dice": summary["foreground_mean"]["Dice"],
                "test_dice_per_class": {k: v["Dice"] for k, v in summary["mean"].items()},
                "params": counted["params"], "gflops": counted["gflops"],
                "train_seconds": self.train_seconds(trainer, fold),
                "target_reached": None if status is None else status["target_reached"],
                **({} if status is None or status["target_reached"] else
                   {"pruning": f"{status['kept_fraction']:.1%} of the {status['target_metric']} (target "
                               f"{status['keep_fraction']:.0%}), {status['outcome']}"})}


#: the wall time of a pipeline's ``nnUNetv2_train`` run, beside its checkpoint
TRAIN_SECONDS = "pipeline_train_seconds.json"


#: nnUNetv2_train's and nnUNetv2_predict's -device values
DEVICES = ("cpu", "cuda", "mps")
#: the configurations a pipeline trains (the cascade's 3d_cascade_fullres needs 3d_lowres's predictions first)
CONFIGURATIONS = ("3d_fullres", "2d", "3d_lowres")


def check_device(device: str) -> str:
    """``device`` if nnU-Net's commands can run on it here (cpu, cuda, mps; ``cuda:1`` is not nnU-Net's: it takes
    ``CUDA_VISIBLE_DEVICES``), else a one-line error; imports torch only for cuda and mps."""
    if device not in DEVICES:
        raise PruningError(f"device {device!r} is not one of {', '.join(DEVICES)} (as nnUNetv2_train -device; pick a "
                           f"GPU with CUDA_VISIBLE_DEVICES)")
    if device != "cpu":
        import torch

        found = torch.cuda.is_available() if device == "cuda" else torch.backends.mps.is_available()
        if not found:
            raise PruningError(f"device {device} asked for, but {device.upper()} is not available on this machine; "
                               f"use --device cpu")
    return device


def require_test_cases(raw: str, dataset_id: int) -> None:
    """A one-line error unless ``raw`` holds the dataset with non-empty ``imagesTs`` and ``labelsTs``."""
    from nnunet_pruning.adapter.datasets import folders_with_id

    found = folders_with_id(raw, dataset_id)
    if not found:
        raise PruningError(f"dataset {dataset_id} is not in nnUNet_raw={raw}; pass the id of a dataset there")
    for sub in ("imagesTs", "labelsTs"):
        folder = os.path.join(raw, found[0], sub)
        if not os.path.isdir(folder) or not os.listdir(folder):
            raise PruningError(f"dataset {found[0]} has no {sub} in {raw}; test Dice needs held-out cases with "
                               f"reference labels (imagesTs and labelsTs)")
