"""The demo: synthetic dataset -> plan -> train five models -> predict -> evaluate -> compare report.

Every step is a stock ``nnUNetv2_*`` command (or ``nnunet-pruning``) run in a subprocess, exactly as a
user would type it. Progress lines go to stdout; each command's full output goes to ``commands.log``.
"""

from __future__ import annotations

import os
import shlex
import time

from nnunet_pruning.adapter.datasets import dataset_id
from nnunet_pruning.app.compare import run_compare
from nnunet_pruning.app.pipeline import TRAINING_PROGRESS, Pipeline, SyntheticDataset, check_device
from nnunet_pruning.app.timing import TimingSettings
from nnunet_pruning.app.workspace import NnUNetWorkspace
from nnunet_pruning.core.files import write_json

__all__ = ["DEMO_TRAINERS", "THESIS_TRAINERS", "DEMO_DATASET", "run_demo", "chance_dice", "budget_text"]

DATASET_ID = 900
#: the demo's synthetic dataset, made in the output folder unless the user brings one (``-d``)
DEMO_DATASET = SyntheticDataset(DATASET_ID, num_train=10, num_test=4, size=32)
#: (label in the report, trainer name): the thesis' methods beside stock, each on the demo budget (``_demo``, see
#: trainers/budgets.py); ``benchmark`` runs these by default
THESIS_TRAINERS = [("stock nnU-Net", "nnUNetTrainerStock_demo"), ("Flat U-Net 32", "nnUNetTrainerFlatUNet_demo"),
                   ("random-largest (keep 20% params)", "nnUNetTrainerRandomLargest_demo"),
                   ("STAMP (keep 20% params)", "nnUNetTrainerSTAMP_demo")]
#: the demo adds STAMP pruned to half of the forward time it measures on this machine while it trains
DEMO_TRAINERS = THESIS_TRAINERS + [("STAMPLatency (keep 50% of the time)", "nnUNetTrainerSTAMPLatency_keep50_demo")]


def run_demo(output: str, trainers: list[tuple[str, str]] | None = None, dataset: str | None = None,
             device: str = "cpu", configuration: str = "3d_fullres") -> int:
    """Run the whole demo into ``output`` and write ``output/report.md``. Returns an exit status.

    ``trainers``: (label, trainer name) pairs, the first is the baseline; default :data:`DEMO_TRAINERS`.
    ``dataset``: an id of the user's nnU-Net folders (``$nnUNet_raw`` ...) with imagesTs/labelsTs, used instead
    of the synthetic dataset; its models train into ``$nnUNet_results`` (finished folds are reused).
    ``device``: what every model trains, predicts and is timed on (cpu, cuda, mps).
    ``configuration``: the nnU-Net configuration (3d_fullres, 2d, 3d_lowres).
    """
    trainers = list(trainers or DEMO_TRAINERS)
    check_device(device)
    started = time.time()

    def say(message: str) -> None:
        print(f"[demo {time.time() - started:6.0f} s] {message}", flush=True)

    pipeline = _pipeline(output, dataset, say, device, configuration)
    ws = pipeline.ws
    say(f"workspace {ws.root}; full command output in {pipeline.log}")
    name = pipeline.name
    dataset_json = pipeline.dataset_json()
    labels_ts = os.path.join(pipeline.raw_folder, "labelsTs")
    cases = (dataset_json["numTraining"], len(os.listdir(labels_ts)))
    say(f"dataset {name}: {cases[0]} training and {cases[1]} test cases")
    plans = pipeline.plan(trust_existing=dataset is not None)
    say(f"planned and preprocessed ({configuration})")

    rows = []
    labels = {trainer: label for label, trainer in trainers}
    runs = pipeline.test_runs([(trainer, "0") for _, trainer in trainers], lambda trainer, fold: labels[trainer],
                              progress=TRAINING_PROGRESS)
    for (label, trainer), run in zip(trainers, runs):
        rows.append({"model": label, "trainer": trainer, "test_dice": run["test_dice"],
                     "test_dice_per_class": run["test_dice_per_class"]})

    say("comparing the models (validation Dice, size, GFLOPs, inference time through nnU-Net's predictor)")
    names = {str(v): k for k, v in dataset_json["labels"].items() if not isinstance(v, (list, tuple))}
    chance = {names.get(k, k): v for k, v in chance_dice(labels_ts).items()}
    for r in rows:
        r["test_dice_per_class"] = {names.get(k, k): v for k, v in r["test_dice_per_class"].items()}
    batch_size = plans["configurations"][configuration]["batch_size"]
    preamble = _preamble(rows, chance, [t for _, t in trainers], batch_size,
                         _dataset_text(name, dataset_json, cases, device, configuration))
    images = os.path.join(pipeline.raw_folder, "imagesTs")
    command = shlex.join(["nnunet-pruning", "compare", *(t for _, t in trainers), "-d", str(pipeline.dataset_id),
                          "-c", configuration, "-f", "0", "--labels", *(lb for lb, _ in trainers), "--time", images,
                          "-o", ws.root, *(["-device", device] if device != "cpu" else [])])
    with ws.exported():  # the predictor looks trainers up in-process
        written = run_compare([t for _, t in trainers], ws.root, dataset=str(pipeline.dataset_id),
                              configuration=configuration, folds=["0"], labels=[lb for lb, _ in trainers],
                              time_images=images, command=command, title="nnunet_pruning demo", preamble=preamble,
                              progress=say, settings=TimingSettings(device=device))
    write_json({"chance_dice_all_voxels": chance, "models": rows}, os.path.join(ws.root, "demo_test_dice.json"))
    say(f"done in {(time.time() - started) / 60:.1f} min: {written['report']} (plots beside it)")
    return 0


def _pipeline(output: str, dataset: str | None, say, device: str = "cpu",
              configuration: str = "3d_fullres") -> Pipeline:
    """The demo's synthetic dataset in ``output``, or the user's dataset ``dataset`` in their nnU-Net folders."""
    if dataset is not None:
        return Pipeline.of_user_dataset(output, dataset_id(dataset), say=say, device=device,
                                        configuration=configuration)
    pipeline = Pipeline(NnUNetWorkspace(output), DATASET_ID, say=say, device=device, configuration=configuration)
    pipeline.make_dataset(DEMO_DATASET)
    pipeline.require_test_cases()
    return pipeline


def _dataset_text(name: str, dataset_json: dict, cases: tuple[int, int], device: str = "cpu",
                  configuration: str = "3d_fullres") -> str:
    made = dataset_json.get("generator")
    what = (f"Synthetic dataset {name} ({cases[0]} training / {cases[1]} test cases, "
            f"{'x'.join(map(str, made['shape']))}, classes with overlapping intensities)" if made else
            f"Dataset {name} ({cases[0]} training / {cases[1]} test cases)")
    where = "CPU" if device == "cpu" else f"{device} (GPU)"
    return f"{what}, {configuration}, fold 0, {where}, every command a stock `nnUNetv2_*` one (see commands.log)."


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


#: how the budget line names each pruning target
TARGET_WORDS = {"params": "parameters", "gflops": "GFLOPs", "latency": "measured forward time"}


def budget_text(trainers: list[str], batch_size: int) -> str:
    """The training budget of ``trainers``, read from their classes (epochs, iterations, pruning schedule)."""
    from nnunet_pruning.adapter.networks import resolve_trainer
    from nnunet_pruning.trainers.registry import budget_of_class

    budgets, pruning = {}, {}
    for name in trainers:
        cls = resolve_trainer(name)
        epochs, iterations = budget_of_class(cls).epochs, budget_of_class(cls).iterations
        budgets.setdefault((epochs, iterations), []).append(name)
        schedule = getattr(cls, "pruning_schedule", None)
        if schedule is not None:
            steps = [e for e in range(epochs) if schedule.is_pruning_epoch(e)][:schedule.steps_needed()]
            metric = TARGET_WORDS[schedule.target_metric]
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


def _preamble(rows: list[dict], chance: dict, trainers: list[str], batch_size: int, dataset_text: str) -> str:
    base = rows[0]
    chance_mean = sum(chance.values()) / len(chance)
    lines = [dataset_text, "",
             budget_text(trainers, batch_size) + " These are CPU-sized runs that show the mechanics and the sizes, "
             "not converged accuracy; Dice differences of a few points between single short runs are within "
             "run-to-run noise. One run cannot tell whether a method loses Dice: `nnunet-pruning benchmark` runs "
             "every model on several folds and reports mean, sd and the paired difference with its 95% interval.",
             "",
             f"**Did the stock model learn the task?** Its test Dice is {base['test_dice']:.3f}; labelling every "
             f"voxel as the class gives {chance_mean:.3f} (per class: "
             f"{', '.join(f'{k}: {v:.3f}' for k, v in chance.items())}), and no single intensity threshold reaches "
             f"0.8 on the synthetic data (tests/app/test_synthetic.py). "
             + ("So the budget is enough for the stock model to learn the task."
                if base["test_dice"] > max(0.5, 2 * chance_mean) else
                "That is NOT clearly above chance: the comparison below means little; train longer."), "",
             "## Test Dice (nnUNetv2_predict + nnUNetv2_evaluate_folder on the held-out test cases)", "",
             "| model | trainer | test Dice (mean fg) | per class |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | `{r['trainer']}` | {r['test_dice']:.3f} | "
                     f"{', '.join(f'{k}: {v:.3f}' for k, v in r['test_dice_per_class'].items())} |")
    return "\n".join(lines)
