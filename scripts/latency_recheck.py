#!/usr/bin/env python
"""The latency target measured again: each fold's forward time as its training run logged it (a share of the
unpruned network's) against the same network timed now, as the predictor loads it.

    python -m scripts latency-recheck RESULTS/nnUNetTrainerSTAMPLatency_keep50_demo__nnUNetPlans__3d_fullres \\
        --folds 0 1 2 --threads 2 --rounds 5 --channels-last --json docs/benchmarks/latency_recheck.json

Per fold: the unpruned network as the fold's trainer builds it (the reference its pruner timed against) and the
fold's network from its checkpoint, timed interleaved by the pruner's own measurement
(:func:`nnunet_pruning.core.latency.relative_seconds`, batch 1 at the patch size), ``--rounds`` times; with
``--channels-last`` also with the weights channels-last, as a CPU training run holds them (trainers/memory_format.py:
what the pruner timed before 2026-11-29). Medians; the other processes' CPU load is recorded. Run it on an idle
machine: a share measured beside other work can be off by tens of points.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import torch

from nnunet_pruning.adapter.checkpoints import load_checkpoint_file
from nnunet_pruning.adapter.networks import build_from_checkpoint, build_network, chosen_folds, load_plans, \
    resolve_trainer
from nnunet_pruning.adapter.pruning_logs import read_pruning_log, target_status
from nnunet_pruning.app.machine import OtherCpuLoad
from nnunet_pruning.app.provenance import write_result
from nnunet_pruning.core import latency
from nnunet_pruning.core.latency import LatencyDevice


def recheck(folder: str, path: str, where: LatencyDevice, rounds: int, channels_last: bool) -> dict:
    """One fold: the logged share of the unpruned forward time, and ``rounds`` shares measured now."""
    checkpoint = load_checkpoint_file(path)
    network, patch = build_from_checkpoint(folder, checkpoint)
    plans_manager, configuration, dataset_json = load_plans(os.path.join(folder, "plans.json"),
                                                            checkpoint["init_args"]["configuration"])
    reference = build_network(resolve_trainer(checkpoint["trainer_name"]), plans_manager, configuration, dataset_json)
    shape = (len(dataset_json["channel_names"]), *patch)
    status = target_status(read_pruning_log(os.path.dirname(path))) or {}
    layouts = {"now": latency._timing_copy(network, where)}  # as relative_seconds prepares it
    if channels_last and len(patch) == 3:
        layouts["channels_last"] = latency._timing_copy(network, where).to(memory_format=torch.channels_last_3d)
    reference = latency._timing_copy(reference, where)
    shares: dict[str, list[float]] = {name: [] for name in layouts}
    for _ in range(rounds):  # the layouts alternate, so that a drift of the machine reaches both alike
        for name, model in layouts.items():
            shares[name].append(latency._ratio(model, reference, shape, where))
    result = {"trainer": checkpoint["trainer_name"], "logged_fraction": status.get("latency_fraction"),
              "keep_fraction": status.get("keep_fraction") if status.get("target_metric") == "latency" else None,
              "logged_outcome": status.get("outcome")}
    for name, values in shares.items():
        result[name] = [round(v, 4) for v in values]
        result[f"{name}_median"] = round(statistics.median(values), 4)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="trained model folders (TRAINER__PLANS__CONFIGURATION)")
    parser.add_argument("--folds", nargs="+", help="default: every fold with a checkpoint")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (as the trainers' latency target)")
    parser.add_argument("--rounds", type=int, default=5, help="measurements per fold (each: the pruner's own)")
    parser.add_argument("--channels-last", action="store_true", help="also time the weights channels-last")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.threads < 1:
        parser.error(f"--rounds and --threads must be >= 1 (got {args.rounds}, {args.threads})")
    where = LatencyDevice("cpu", args.threads)
    results = {"device": where.describe(), "rounds": args.rounds, "models": {}}
    print(f"{'model':48s} {'fold':>4s} {'target':>6s} {'logged':>7s} {'now':>7s} {'range now':>13s}"
          + (f" {'ch-last':>7s}" if args.channels_last else ""))
    with OtherCpuLoad() as load:
        for folder in args.folders:
            name = os.path.basename(os.path.normpath(folder))
            for fold, path in chosen_folds(folder, args.folds).items():
                r = recheck(folder, path, where, args.rounds, args.channels_last)
                results["models"].setdefault(name, {})[fold] = r

                def pct(v):
                    return f"{v:.1%}" if v is not None else "-"
                print(f"{name[:48]:48s} {fold:>4s} {pct(r['keep_fraction']):>6s} {pct(r['logged_fraction']):>7s} "
                      f"{pct(r['now_median']):>7s} {pct(min(r['now'])) + '-' + pct(max(r['now'])):>13s}"
                      + (f" {pct(r.get('channels_last_median')):>7s}" if args.channels_last else ""), flush=True)
    results["other_cpu_cores"] = load.cores
    if load.warning():
        print(load.warning())
    print("logged: the last pruning step's measured forward time while training; now: timed again here (median of "
          f"{args.rounds}), the network as the predictor loads it; shares of the unpruned network's time")
    write_result(results, args.json, __file__, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
