#!/usr/bin/env python
"""Whole ``nnUNetv2_train`` runs timed as a user times them: stock nnU-Net against this package's trainers.

    python scripts/benchmark_training_time.py WORKDIR --rounds 3 --json docs/benchmarks/training_time_demo.json

1. The demo's synthetic dataset (id 901: 10 training cases of 32^3, as ``scripts/benchmark_latency_target.sh``),
   planned by nnU-Net (4 stages 32-256, patch 32^3), unless WORKDIR has it already.
2. Round r trains every variant on fold r with the stock command (``nnUNetv2_train 901 3d_fullres r -tr ...
   -device cpu``), one after the other; the order rotates from round to round. Default variants: stock nnU-Net,
   stock nnU-Net trained channels-last (what this package's trainers do on the CPU:
   ``nnunet_pruning/trainers/memory_format.py``), STAMP, and STAMP in nnU-Net's default layout
   (``nnUNet_pruning_channels_last=0``, its own results folder). All on the demo budget (5 epochs x 20 iterations).
3. Per run: wall time (process start to exit, the final validation included), the sum of nnU-Net's "Epoch time"
   lines, the pruning steps' seconds, the final validation's Dice (2 cases: a sanity check, not a Dice figure),
   and the CPU cores other processes kept busy in the 10 s before the run (nothing of this benchmark runs then).
   Then per variant the median over rounds and the median of the per-round ratios to the first variant.

Run it on an otherwise idle machine: every figure is a time.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from collect_training_times import EPOCH, STEP  # noqa: E402

from nnunet_pruning.app.machine import OtherCpuLoad  # noqa: E402

DATASET = 901
QUIET_SECONDS = 10
NAME = "Dataset901_Benchmark"
#: label -> (trainer, extra environment, results folder name)
VARIANTS = {
    "stock": ("nnUNetTrainerStock_demo", {}, "nnUNet_results"),
    "stock, channels-last": ("nnUNetTrainerStockChannelsLast_demo", {}, "nnUNet_results"),
    "STAMP": ("nnUNetTrainerSTAMP_demo", {}, "nnUNet_results"),
    "STAMP, default layout": ("nnUNetTrainerSTAMP_demo", {"nnUNet_pruning_channels_last": "0"},
                              "nnUNet_results_default_layout"),
}
DICE = re.compile(r"Mean Validation Dice:\s+([0-9.]+)")


def environment(work: str, threads: int) -> dict:
    env = dict(os.environ, nnUNet_raw=os.path.join(work, "nnUNet_raw"),
               nnUNet_preprocessed=os.path.join(work, "nnUNet_preprocessed"),
               nnUNet_results=os.path.join(work, "nnUNet_results"), nnUNet_def_n_proc=str(threads),
               nnUNet_n_proc_DA=str(threads), OMP_NUM_THREADS=str(threads))
    from nnunet_pruning.adapter.environment import ext_trainer_folder
    env["nnUNet_extTrainer"] = ext_trainer_folder()
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.makedirs(env[name], exist_ok=True)
    return env


def prepare(work: str, env: dict, bin_dir: str) -> None:
    plans = os.path.join(work, "nnUNet_preprocessed", NAME, "nnUNetPlans.json")
    if os.path.isfile(plans):
        return
    print("[training time] making and planning the dataset", flush=True)
    subprocess.run([os.path.join(bin_dir, "nnunet-pruning"), "make-dataset", "--id", str(DATASET), "--name",
                    "Benchmark", "--train", "10", "--test", "4", "--size", "32", "--seed", "0"], env=env, check=True)
    subprocess.run([os.path.join(bin_dir, "nnUNetv2_plan_and_preprocess"), "-d", str(DATASET), "-c", "3d_fullres",
                    "-np", "2", "-npfp", "2", "--verify_dataset_integrity"], env=env, check=True,
                   stdout=subprocess.DEVNULL)


def read_log(fold_dir: str) -> dict:
    """Epoch seconds, pruning steps and final Dice from the newest nnU-Net log of a fold folder."""
    logs = sorted(glob.glob(os.path.join(fold_dir, "training_log_*.txt")))
    text = open(logs[-1]).read() if logs else ""
    dice = DICE.findall(text)
    return {"epochs_s": round(sum(float(x) for x in EPOCH.findall(text)), 2),
            "epoch_s": [float(x) for x in EPOCH.findall(text)],
            "pruning_steps_s": [float(x) for x in STEP.findall(text)],
            "validation_dice": float(dice[-1]) if dice else None}


def train(work: str, env: dict, bin_dir: str, label: str, fold: int) -> dict:
    trainer, extra, results = VARIANTS[label]
    run_env = dict(env, nnUNet_results=os.path.join(work, results), **extra)
    folder = os.path.join(work, results, NAME, f"{trainer}__nnUNetPlans__3d_fullres", f"fold_{fold}")
    shutil.rmtree(folder, ignore_errors=True)  # a fresh run, not a resumed one
    with OtherCpuLoad() as quiet:  # nothing of ours runs now: what is busy is someone else
        time.sleep(QUIET_SECONDS)
    load = quiet.cores
    log_path = os.path.join(work, f"train_{label.replace(', ', '_').replace(' ', '_')}_fold{fold}.log")
    start = time.perf_counter()
    with open(log_path, "w") as log:
        subprocess.run([os.path.join(bin_dir, "nnUNetv2_train"), str(DATASET), "3d_fullres", str(fold), "-tr", trainer,
                        "-device", "cpu"], env=run_env, check=True, stdout=log, stderr=subprocess.STDOUT)
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
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                        help="the first one is the reference of the ratios")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 5:
        parser.error("--rounds must be 1-5 (the dataset has 5 folds)")
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    bin_dir = os.path.dirname(sys.executable)
    env = environment(work, args.threads)
    prepare(work, env, bin_dir)
    runs = []
    for fold in range(args.rounds):
        order = args.variants[fold % len(args.variants):] + args.variants[:fold % len(args.variants)]
        for label in order:
            runs.append(train(work, env, bin_dir, label, fold))
    summary = summarise(runs, args.variants)
    for label, s in summary.items():
        print(f"[training time] {label:<24} median wall {s['median_wall_s']:6.1f} s "
              f"({s[f'median_wall_vs_{args.variants[0]}']:.2f}x), epochs {s['median_epochs_s']:6.1f} s "
              f"({s[f'median_epochs_vs_{args.variants[0]}']:.2f}x)", flush=True)
    if args.json:
        import torch
        result = {"command": "python scripts/benchmark_training_time.py " + " ".join(
                      sys.argv[1:] if argv is None else argv),
                  "machine": {"platform": platform.platform(), "processor": platform.processor(),
                              "cpus": os.cpu_count(), "threads": args.threads, "torch": torch.__version__},
                  "date": time.strftime("%Y-%m-%d"), "summary": summary, "runs": runs}
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"[training time] wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
