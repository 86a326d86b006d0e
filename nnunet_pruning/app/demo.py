"""The demo: synthetic dataset -> plan -> train four models -> predict -> evaluate -> compare report.

Every step is a stock ``nnUNetv2_*`` command (or ``nnunet-pruning``) run in a subprocess, exactly as a
user would type it. Progress lines go to stdout; each command's full output goes to ``commands.log``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import time

from nnunet_pruning.adapter.datasets import folders_with_id
from nnunet_pruning.app.compare import run_compare
from nnunet_pruning.app.workspace import NnUNetWorkspace

__all__ = ["DEMO_TRAINERS", "run_demo", "chance_dice", "budget_text"]

DATASET_ID = 900
#: (label in the report, trainer name). Each trains the demo schedule (see trainers/schedules.py).
DEMO_TRAINERS = [("stock nnU-Net", "nnUNetTrainerStock_demo"), ("Flat U-Net 32", "nnUNetTrainerFlatUNet_demo"),
                 ("random-largest (keep 20% params)", "nnUNetTrainerRandomLargest_demo"),
                 ("STAMP (keep 20% params)", "nnUNetTrainerSTAMP_demo")]


#: nnU-Net log lines worth showing while a model trains
TRAINING_PROGRESS = re.compile(r": (Epoch \d+|Pseudo dice|pruning step|Mean Validation Dice)")


def _progress(started: float, message: str) -> None:
    print(f"[demo {time.time() - started:6.0f} s] {message}", flush=True)


def _evaluate(ws: NnUNetWorkspace, model_folder: str, predictions: str, labels: str, log: str) -> dict:
    ws.run("nnUNetv2_evaluate_folder", labels, predictions, "-djfile", os.path.join(model_folder, "dataset.json"),
           "-pfile", os.path.join(model_folder, "plans.json"), log=log)
    with open(os.path.join(predictions, "summary.json")) as f:
        return json.load(f)


def run_demo(output: str, trainers: list[tuple[str, str]] | None = None) -> int:
    """Run the whole demo into ``output`` and write ``output/report.md``. Returns an exit status.

    ``trainers``: (label, trainer name) pairs, the first is the baseline; default :data:`DEMO_TRAINERS`.
    """
    trainers = list(trainers or DEMO_TRAINERS)
    started = time.time()
    ws = NnUNetWorkspace(output)
    log = os.path.join(ws.root, "commands.log")
    _progress(started, f"workspace {ws.root}; full command output in {log}")
    if not folders_with_id(ws.raw, DATASET_ID):
        ws.run("nnunet-pruning", "make-dataset", "--id", str(DATASET_ID), "--train", "10", "--test", "4",
               "--size", "32", log=log)
    name = ws.dataset_name(DATASET_ID)
    _progress(started, f"dataset {name}: 10 training and 4 test cases of 32^3 voxels")
    if not os.path.isfile(os.path.join(ws.preprocessed, name, "nnUNetPlans.json")):
        ws.run("nnUNetv2_plan_and_preprocess", "-d", str(DATASET_ID), "-c", "3d_fullres", "-np", "2", "-npfp", "2",
               extra_env={"nnUNet_n_proc_DA": "2"}, log=log)
    _progress(started, "planned and preprocessed (3d_fullres)")

    rows = []
    labels_ts = os.path.join(ws.raw, name, "labelsTs")
    for label, trainer in trainers:
        folder = ws.model_folder(DATASET_ID, trainer)
        if not os.path.isfile(os.path.join(folder, "fold_0", "checkpoint_final.pth")):
            _progress(started, f"training {label} ({trainer}, fold 0) ...")
            ws.run("nnUNetv2_train", str(DATASET_ID), "3d_fullres", "0", "-tr", trainer, "-device", "cpu", log=log,
                   progress=TRAINING_PROGRESS)
        _progress(started, f"trained {label}; predicting the test cases")
        predictions = os.path.join(ws.root, "predictions", trainer)
        ws.run("nnUNetv2_predict", "-i", os.path.join(ws.raw, name, "imagesTs"), "-o", predictions, "-d",
               str(DATASET_ID), "-c", "3d_fullres", "-tr", trainer, "-f", "0", "-device", "cpu", "--disable_tta",
               "-npp", "1", "-nps", "1", log=log)
        summary = _evaluate(ws, folder, predictions, labels_ts, log)
        rows.append({"model": label, "trainer": trainer, "test_dice": summary["foreground_mean"]["Dice"],
                     "test_dice_per_class": {k: v["Dice"] for k, v in summary["mean"].items()}})
        _progress(started, f"{label}: test Dice {rows[-1]['test_dice']:.3f}")

    _progress(started, "comparing the models (validation Dice, size, GFLOPs, inference time through nnU-Net's "
                       "predictor)")
    with open(os.path.join(ws.raw, name, "dataset.json")) as f:
        names = {str(v): k for k, v in json.load(f)["labels"].items()}
    chance = {names.get(k, k): v for k, v in chance_dice(labels_ts).items()}
    for r in rows:
        r["test_dice_per_class"] = {names.get(k, k): v for k, v in r["test_dice_per_class"].items()}
    with open(os.path.join(ws.preprocessed, name, "nnUNetPlans.json")) as f:
        batch_size = json.load(f)["configurations"]["3d_fullres"]["batch_size"]
    preamble = _preamble(rows, chance, [t for _, t in trainers], batch_size)
    command = shlex.join(["nnunet-pruning", "compare", *(t for _, t in trainers), "-d", str(DATASET_ID), "-c",
                          "3d_fullres", "-f", "0", "--labels", *(lb for lb, _ in trainers), "--time",
                          os.path.join(ws.raw, name, "imagesTs"), "-o", ws.root])
    with ws.exported():  # the predictor looks trainers up in-process
        written = run_compare([t for _, t in trainers], ws.root, dataset=str(DATASET_ID),
                              configuration="3d_fullres", folds=["0"], labels=[lb for lb, _ in trainers],
                              time_images=os.path.join(ws.raw, name, "imagesTs"), command=command,
                              title="nnunet_pruning demo", preamble=preamble,
                              progress=lambda line: _progress(started, line))
    with open(os.path.join(ws.root, "demo_test_dice.json"), "w") as f:
        json.dump({"chance_dice_all_voxels": chance, "models": rows}, f, indent=2)
    _progress(started, f"done in {(time.time() - started) / 60:.1f} min: {written['report']} (plots beside it)")
    return 0


def chance_dice(labels_folder: str) -> dict:
    """Per class, the test Dice of labelling every voxel as that class: what a model that learned nothing
    about where the class is gets (mean over the test cases)."""
    import numpy as np
    import SimpleITK as sitk

    per_class: dict[int, list[float]] = {}
    for name in sorted(os.listdir(labels_folder)):
        seg = sitk.GetArrayFromImage(sitk.ReadImage(os.path.join(labels_folder, name)))
        for c in (int(v) for v in np.unique(seg) if v > 0):
            per_class.setdefault(c, []).append(2 * float((seg == c).sum()) / (float((seg == c).sum()) + seg.size))
    return {str(c): sum(v) / len(v) for c, v in per_class.items()}


def budget_text(trainers: list[str], batch_size: int) -> str:
    """The training budget of ``trainers``, read from their classes (epochs, iterations, pruning schedule)."""
    from nnunet_pruning.adapter.networks import resolve_trainer

    budgets, pruning = {}, {}
    for name in trainers:
        cls = resolve_trainer(name)
        epochs, iterations = getattr(cls, "schedule_epochs", 1000), getattr(cls, "schedule_iterations", 250)
        budgets.setdefault((epochs, iterations), []).append(name)
        schedule = getattr(cls, "pruning_schedule", None)
        if schedule is not None:
            steps = [e for e in range(epochs) if schedule.is_pruning_epoch(e)][:schedule.steps_needed()]
            metric = "parameters" if schedule.target_metric == "params" else "GFLOPs"
            pruning.setdefault((tuple(steps), schedule.keep_fraction, metric, epochs - 1 - max(steps, default=-1)),
                               []).append(name)

    def _n(count: int, word: str) -> str:
        return f"{count} {word}{'' if count == 1 else 's'}"

    def _subject(names: list[str], everyone: str | None, verb: str) -> str:
        """``everyone`` when one sentence covers every trainer, else the trainers' names with the verb."""
        if everyone:
            return everyone
        return f"{', '.join(f'`{n}`' for n in names)} {verb}{'s' if len(names) == 1 else ''}"

    parts = []
    for (epochs, iterations), names in budgets.items():
        who = _subject(names, "Every model trains" if len(budgets) == 1 else None, "train")
        parts.append(f"{who} {_n(epochs, 'epoch')} x {_n(iterations, 'iteration')} ({epochs * iterations} SGD steps, "
                     f"batch {batch_size}; nnU-Net's default is 1000 x 250).")
    for (steps, keep, metric, recover), names in pruning.items():
        who = _subject(names, "The pruning trainers prune" if len(pruning) == 1 and len(names) > 1 else None, "prune")
        when = (f"after epoch{'s' if len(steps) > 1 else ''} {', '.join(map(str, steps))}" if len(steps) <= 4 else
                f"{len(steps)} times, after epochs {steps[0]}, {steps[1]}, ... {steps[-1]}")
        follow = "follows" if recover == 1 else "follow"
        parts.append(f"{who} {when} (to {keep:.0%} of the {metric}); {_n(recover, 'epoch')} of recovery {follow}.")
    return "**Budget.** " + " ".join(parts)


def _preamble(rows: list[dict], chance: dict, trainers: list[str], batch_size: int) -> str:
    base = rows[0]
    chance_mean = sum(chance.values()) / len(chance)
    lines = [f"Synthetic dataset {DATASET_ID} (10 training / 4 test cases, 32^3, two classes with overlapping "
             f"intensities), 3d_fullres, fold 0, CPU, every command a stock `nnUNetv2_*` one (see commands.log).", "",
             budget_text(trainers, batch_size) + " These are CPU-sized runs that show the mechanics and the sizes, "
             "not converged accuracy; Dice differences of a few points between single short runs are within "
             "run-to-run noise.", "",
             f"**Did the stock model learn the task?** Its test Dice is {base['test_dice']:.3f}; labelling every "
             f"voxel as the class gives {chance_mean:.3f} (per class: "
             f"{', '.join(f'{k}: {v:.3f}' for k, v in chance.items())}), and no single intensity threshold reaches "
             f"0.8 on this data (tests/test_synthetic.py). "
             + ("So the budget is enough for the stock model to learn the task."
                if base["test_dice"] > max(0.5, 2 * chance_mean) else
                "That is NOT clearly above chance: the comparison below means little; train longer."), "",
             "## Test Dice (nnUNetv2_predict + nnUNetv2_evaluate_folder on the 4 test cases)", "",
             "| model | trainer | test Dice (mean fg) | per class |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | `{r['trainer']}` | {r['test_dice']:.3f} | "
                     f"{', '.join(f'{k}: {v:.3f}' for k, v in r['test_dice_per_class'].items())} |")
    return "\n".join(lines)
