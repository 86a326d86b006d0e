#!/usr/bin/env python
"""Whole ``nnUNetv2_train`` runs timed as a user times them: stock nnU-Net against this package's trainers.

    python scripts/benchmark_training_time.py WORKDIR --rounds 3 --json docs/benchmarks/training_time_demo.json

1. The benchmark's synthetic dataset (id 901: 10 training cases of 32^3, as ``nnunet-pruning benchmark`` makes it),
   made and planned by the package's pipeline (nnU-Net plans 4 stages 32-256, patch 32^3), unless WORKDIR has it.
2. Round r trains every variant on fold r with the stock command (``nnUNetv2_train 901 3d_fullres r -tr ...
   -device cpu``), one after the other; the order rotates from round to round. Default variants: stock nnU-Net,
   stock nnU-Net trained channels-last (what this package's trainers do on the CPU:
   ``nnunet_pruning/trainers/memory_format.py``), STAMP, and STAMP in nnU-Net's default layout
   (``nnUNet_pruning_channels_last=0``, its own results folder). All on the demo budget (5 epochs x 20 iterations).
   ``--trainers`` adds any trainer by name (e.g. the latency-targeted ones: their table's seconds are recorded).
3. Per run: wall time (process start to exit, the final validation included), the sum of nnU-Net's "Epoch time"
   lines, the pruning steps' seconds, the final validation's Dice (2 cases: a sanity check, not a Dice figure),
   and the CPU cores other processes kept busy in the 10 s before the run (nothing of this benchmark runs then).
   Then per variant the median over rounds and the median of the per-round ratios to the first variant.

Run it on an otherwise idle machine: every figure is a time.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import statistics
import sys
import time

from nnunet_pruning.app.machine import OtherCpuLoad
from nnunet_pruning.app.pipeline import Pipeline, SyntheticDataset
from nnunet_pruning.app.provenance import write_result
from nnunet_pruning.app.workspace import NnUNetWorkspace

DATASET = SyntheticDataset(901, "Benchmark", num_train=10, num_test=4, size=32, seed=0)
QUIET_SECONDS = 10
#: label -> (trainer, extra environment, results folder name); --trainers adds plain ones
VARIANTS = {
    "stock": ("nnUNetTrainerStock_demo", {}, "nnUNet_results"),
    "stock, channels-last": ("nnUNetTrainerStockChannelsLast_demo", {}, "nnUNet_results"),
    "STAMP": ("nnUNetTrainerSTAMP_demo", {}, "nnUNet_results"),
    "STAMP, default layout": ("nnUNetTrainerSTAMP_demo", {"nnUNet_pruning_channels_last": "0"},
                              "nnUNet_results_default_layout"),
}
DICE = re.compile(r"Mean Validation Dice:\s+([0-9.]+)")
EPOCH = re.compile(r"Epoch time: ([0-9.]+) s")
STEP = re.compile(r"the step took ([0-9.]+) s")
TABLE = re.compile(r"latency: table measured in ([0-9.]+) s")


def pipeline(work: str, threads: int, results: str = "nnUNet_results") -> Pipeline:
    """The package's pipeline over WORKDIR (its nnUNet_raw and _preprocessed, the results folder ``results``)."""
    folders = tuple(os.path.join(work, n) for n in ("nnUNet_raw", "nnUNet_preprocessed", results))
    ws = NnUNetWorkspace(work, threads=threads, nnunet_folders=folders)
    return Pipeline(ws, DATASET.dataset_id, log=os.path.join(work, "commands.log"),
                    say=lambda line: print(f"[training time] {line}", flush=True))


def prepare(work: str, threads: int) -> None:
    """The demo-sized synthetic dataset 901, made and planned unless WORKDIR has it."""
    main = pipeline(work, threads)
    main.make_dataset(DATASET)
    main.plan(processes=threads)


def read_log(fold_dir: str) -> dict:
    """Epoch seconds, pruning steps, latency table and final Dice from the newest nnU-Net log of a fold folder."""
    logs = sorted(glob.glob(os.path.join(fold_dir, "training_log_*.txt")))
    text = open(logs[-1]).read() if logs else ""
    dice = DICE.findall(text)
    return {"epochs_s": round(sum(float(x) for x in EPOCH.findall(text)), 2),
            "epoch_s": [float(x) for x in EPOCH.findall(text)],
            "pruning_steps_s": [float(x) for x in STEP.findall(text)],
            "latency_table_s": sum(float(x) for x in TABLE.findall(text)),
            "validation_dice": float(dice[-1]) if dice else None}


def train(work: str, threads: int, variants: dict, label: str, fold: int) -> dict:
    """One fresh ``nnUNetv2_train`` of a variant on a fold, timed from process start to exit."""
    trainer, extra, results = variants[label]
    runner = pipeline(work, threads, results)
    folder = runner.fold_folder(trainer, fold)
    shutil.rmtree(folder, ignore_errors=True)  # a fresh run, not a resumed one
    with OtherCpuLoad() as quiet:  # nothing of ours runs now: what is busy is someone else
        time.sleep(QUIET_SECONDS)
    load = quiet.cores
    start = time.perf_counter()
    runner.train(trainer, fold, extra_env=dict(extra, nnUNet_n_proc_DA=str(threads)))
    wall = time.perf_counter() - start
    run = {"variant": label, "trainer": trainer, "fold": fold, "wall_s": round(wall, 1), "other_cores_before": load,
           **extra, **read_log(folder)}
    print(f"[training time] fold {fold} {label:<24} wall {wall:6.1f} s  epochs {run['epochs_s']:6.1f} s  "
          f"(other processes before: {load if load is None else round(load, 2)} cores)", flush=True)
    return run


def summarise(runs: list[dict], labels: list[str]) -> dict:
    first = labels[0]
    by_fold = {}
    for run in runs:
        by_fold.setdefault(run["fold"], {})[run["variant"]] = run
    summary = {}
    for label in labels:
        mine = [r for r in runs if r["variant"] == label]
        ratios = [by_fold[r["fold"]][label]["wall_s"] / by_fold[r["fold"]][first]["wall_s"] for r in mine]
        epoch_ratios = [by_fold[r["fold"]][label]["epochs_s"] / by_fold[r["fold"]][first]["epochs_s"] for r in mine]
        summary[label] = {"runs": len(mine), "median_wall_s": statistics.median(r["wall_s"] for r in mine),
                          "median_epochs_s": statistics.median(r["epochs_s"] for r in mine),
                          f"wall_vs_{first}": ratios, f"median_wall_vs_{first}": statistics.median(ratios),
                          f"median_epochs_vs_{first}": statistics.median(epoch_ratios)}
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", help="working folder (dataset, results, logs)")
    parser.add_argument("--rounds", type=int, default=3, help="folds 0..rounds-1, every variant once each (max 5)")
    parser.add_argument("--variants", nargs="*", default=None, choices=list(VARIANTS),
                        help="built-in variants; the first one is the reference of the ratios (default: all, "
                             "or none when --trainers is given)")
    parser.add_argument("--trainers", nargs="+", default=[],
                        help="more variants: any trainer names, e.g. nnUNetTrainerSTAMPLatency_5epochs_20iters")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 5:
        parser.error("--rounds must be 1-5 (the dataset has 5 folds)")
    labels = list(VARIANTS) if args.variants is None and not args.trainers else list(args.variants or [])
    variants = {**{k: VARIANTS[k] for k in labels}, **{t: (t, {}, "nnUNet_results") for t in args.trainers}}
    labels += [t for t in args.trainers if t not in labels]
    if not labels:
        parser.error("nothing to train: name --variants or --trainers")
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    prepare(work, args.threads)
    runs = []
    for fold in range(args.rounds):
        order = labels[fold % len(labels):] + labels[:fold % len(labels)]
        for label in order:
            runs.append(train(work, args.threads, variants, label, fold))
    summary = summarise(runs, labels)
    for label, s in summary.items():
        print(f"[training time] {label:<24} median wall {s['median_wall_s']:6.1f} s "
              f"({s[f'median_wall_vs_{labels[0]}']:.2f}x), epochs {s['median_epochs_s']:6.1f} s "
              f"({s[f'median_epochs_vs_{labels[0]}']:.2f}x)", flush=True)
    write_result({"threads": args.threads, "summary": summary, "runs": runs}, args.json, __file__, argv,
                 say=lambda line: print(f"[training time] {line}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
