"""The demo: synthetic dataset -> plan -> train stock and Flat U-Net -> predict -> evaluate -> report.

Every step is a stock ``nnUNetv2_*`` command (or ``nnunet-pruning``) run in a subprocess, exactly as a
user would type it. Progress lines go to stdout; each command's full output goes to ``commands.log``.
"""

from __future__ import annotations

import json
import os
import re
import time

from .pipeline import NnUNetWorkspace

__all__ = ["DEMO_TRAINERS", "run_demo"]

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


def run_demo(output: str) -> int:
    """Run the whole demo into ``output`` and write ``output/report.md``. Returns an exit status."""
    from .count import count_model_folder

    started = time.time()
    ws = NnUNetWorkspace(output)
    log = os.path.join(ws.root, "commands.log")
    _progress(started, f"workspace {ws.root}; full command output in {log}")
    if not any(d.startswith(f"Dataset{DATASET_ID:03d}_") for d in os.listdir(ws.raw)):
        ws.run("nnunet-pruning", "make-dataset", "--id", str(DATASET_ID), "--train", "10", "--test", "4",
               "--size", "32", log=log)
    name = ws.dataset_name(DATASET_ID)
    _progress(started, f"dataset {name}: 10 training and 4 test cases of 32^3 voxels")
    if not os.path.isfile(os.path.join(ws.preprocessed, name, "nnUNetPlans.json")):
        ws.run("nnUNetv2_plan_and_preprocess", "-d", str(DATASET_ID), "-c", "3d_fullres", "-np", "2", "-npfp", "2",
               extra_env={"nnUNet_n_proc_DA": "2"}, log=log)
    _progress(started, "planned and preprocessed (3d_fullres)")

    rows = []
    for label, trainer in DEMO_TRAINERS:
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
        summary = _evaluate(ws, folder, predictions, os.path.join(ws.raw, name, "labelsTs"), log)
        fold = count_model_folder(folder)["networks"]["fold_0"]
        with open(os.path.join(folder, "fold_0", "validation", "summary.json")) as f:
            validation_dice = json.load(f)["foreground_mean"]["Dice"]
        rows.append({"model": label, "trainer": trainer, "test_dice": summary["foreground_mean"]["Dice"],
                     "validation_dice": validation_dice,
                     "test_dice_per_class": {k: v["Dice"] for k, v in summary["mean"].items()},
                     "params": fold["params"], "gflops": fold["gflops"],
                     "checkpoint_bytes": fold["checkpoint_bytes"]})
        _progress(started, f"{label}: test Dice {rows[-1]['test_dice']:.3f}, {fold['params']:,} params, "
                           f"{fold['gflops']:.2f} GFLOPs")

    report = os.path.join(ws.root, "report.md")
    with open(report, "w") as f:
        f.write(_report(rows, time.time() - started))
    with open(os.path.join(ws.root, "results.json"), "w") as f:
        json.dump(rows, f, indent=2)
    _progress(started, f"done: {report}")
    print(open(report).read())
    return 0


def _report(rows: list[dict], seconds: float) -> str:
    base = rows[0]
    lines = ["# nnunet_pruning demo", "",
             f"Synthetic dataset {DATASET_ID} (10 training / 4 test cases, 32^3), 3d_fullres, fold 0, CPU. "
             f"Training schedule of every model: the demo schedule (trainers/schedules.py). Wall time "
             f"{seconds / 60:.1f} min.", "",
             "| model | test Dice (mean fg) | validation Dice | params | GFLOPs (patch) | checkpoint MB | params vs "
             "stock | GFLOPs vs stock |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        versus = ("baseline", "baseline") if r is base else (f"{base['params'] / r['params']:.1f}x fewer",
                                                              f"{100 * (1 - r['gflops'] / base['gflops']):.0f}% fewer")
        lines.append(f"| {r['model']} | {r['test_dice']:.3f} | {r['validation_dice']:.3f} | {r['params']:,} | "
                     f"{r['gflops']:.2f} | {r['checkpoint_bytes'] / 1e6:.1f} | {versus[0]} | {versus[1]} |")
    lines += ["", "GFLOPs: one forward pass at the patch size, batch 1, torch FlopCounterMode. Params: "
              "model.parameters(). Test Dice: nnUNetv2_evaluate_folder on the 4 test cases; validation Dice: "
              "nnU-Net's validation/summary.json of fold 0 (2 cases).", "",
              "Budget: every model trains 5 epochs x 25 iterations (125 SGD steps, batch 2). The pruning "
              "trainers prune after epochs 0, 1 and 2 and recover for 2 epochs. A full nnU-Net run is 1000 x 250: "
              "these numbers show the mechanics on a CPU, not converged accuracy."]
    return "\n".join(lines) + "\n"
