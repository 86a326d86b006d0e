#!/usr/bin/env python
"""Test Dice pooled over several `nnunet-pruning benchmark` workspaces (other synthetic seeds or datasets): paired.

Each run is keyed by its workspace and fold, so a trainer is paired with the baseline (and ``--reference``) on
the same data split only; the differences of every workspace are pooled into one mean, sd and 95% t interval
(n - 1 degrees of freedom over all pairs), as the benchmark's own report does within one workspace.

    python scripts/pool_dice.py seed0/results.json seed1/results.json --trainers nnUNetTrainerStock_demo \\
        nnUNetTrainerSTAMP_demo nnUNetTrainerSTAMP_fullres24_demo --reference nnUNetTrainerSTAMP_demo
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from nnunet_pruning.app.benchmark import paired_difference, plot_dice_runs
from nnunet_pruning.app.provenance import write_result
from nnunet_pruning.core.errors import PruningError


def pooled_runs(results: list[dict], trainers: list[str]) -> dict[str, dict[str, float]]:
    """``{trainer: {"<workspace index>/<fold>": test Dice}}`` over every results.json given: its invocation's runs
    and every other run scored in that workspace (``other_runs``)."""
    runs: dict[str, dict[str, float]] = {t: {} for t in trainers}
    for i, result in enumerate(results):
        for run in result["runs"] + result.get("other_runs", []):
            if run["trainer"] in runs and run.get("test_dice") is not None:
                runs[run["trainer"]][f"{i}/{run['fold']}"] = float(run["test_dice"])
    missing = [t for t, values in runs.items() if not values]
    if missing:
        raise PruningError(f"no run of {missing[0]} in any of the results given")
    return runs


def summarise(runs: dict[str, dict[str, float]], trainers: list[str], reference: str | None) -> list[dict]:
    rows = []
    for t in trainers:
        values = list(runs[t].values())
        row = {"trainer": t, "runs": len(values), "mean": statistics.mean(values),
               "sd": statistics.stdev(values) if len(values) > 1 else None}
        for key, other in (("vs_baseline", trainers[0]), ("vs_reference", reference)):
            if other and other != t:
                diff = paired_difference(runs[t], runs[other])
                diff["higher"] = sum(runs[t][k] > runs[other][k] for k in diff["folds"])
                row[key] = diff
        rows.append(row)
    return rows


def _diff_text(d: dict | None) -> str:
    if not d:
        return "-"
    ci = f" ({d['ci95'][0]:+.3f} to {d['ci95'][1]:+.3f})" if d["ci95"] else ""
    return f"{d['mean']:+.3f}{ci}, higher in {d['higher']} of {d['n']}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", help="results.json of benchmark workspaces")
    parser.add_argument("--trainers", nargs="+", required=True, help="the first is the baseline")
    parser.add_argument("--reference", help="also pair every trainer with this one")
    parser.add_argument("--json", help="write the pooled figures here")
    parser.add_argument("--plot", help="write a PNG of every run's test Dice (dots) and each mean +- sd here")
    args = parser.parse_args(argv)
    if args.reference and args.reference not in args.trainers:
        parser.error(f"--reference {args.reference} is not one of --trainers")
    try:
        results = []
        for path in args.results:
            with open(path) as f:
                results.append(json.load(f))
        runs = pooled_runs(results, args.trainers)
        rows = summarise(runs, args.trainers, args.reference)
    except (OSError, ValueError, KeyError, PruningError) as e:
        print(f"pool_dice: error: {e}", file=sys.stderr)
        return 2
    print(f"test Dice pooled over {len(results)} workspaces ({', '.join(args.results)}); pairs: same workspace, "
          "same fold")
    print(f"| trainer | runs | mean +- sd | vs {args.trainers[0]} (95% CI) |"
          + (f" vs {args.reference} (95% CI) |" if args.reference else ""))
    print("|---|---|---|---|" + ("---|" if args.reference else ""))
    for r in rows:
        sd = f" +- {r['sd']:.3f}" if r["sd"] is not None else ""
        print(f"| {r['trainer']} | {r['runs']} | {r['mean']:.3f}{sd} | {_diff_text(r.get('vs_baseline'))} |"
              + (f" {_diff_text(r.get('vs_reference'))} |" if args.reference else ""))
    write_result({"workspaces": [os.path.abspath(p) for p in args.results], "trainers": args.trainers,
                  "reference": args.reference, "rows": rows}, args.json, __file__, argv)
    if args.plot:
        plot_dice_runs([{"trainer": r["trainer"], "dice_mean": r["mean"], "dice_sd": r["sd"]} for r in rows],
                       [{"trainer": t, "test_dice": d} for t in args.trainers for d in runs[t].values()], args.plot,
                       f"test Dice per run (dots) over {len(results)} workspaces, mean +- sd")
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
