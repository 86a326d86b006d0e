#!/usr/bin/env python
"""Training times of nnUNetv2_train runs from their own logs: wall time (given), the sum of nnU-Net's
"Epoch time" lines, and the pruning steps' own seconds; each relative to the first trainer.

    python scripts/collect_training_times.py WORKDIR/training_times.json RESULTS_FOLDER --json OUT.json

``training_times.json`` maps trainer -> wall seconds (written by scripts/benchmark_latency_target.sh);
``RESULTS_FOLDER`` is ``nnUNet_results/DatasetXXX_Name``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys

EPOCH = re.compile(r"Epoch time: ([0-9.]+) s")
STEP = re.compile(r"the step took ([0-9.]+) s")
TABLE = re.compile(r"latency: table measured in ([0-9.]+) s")


def collect(walls: dict, results: str) -> dict:
    runs = {}
    for trainer, wall in walls.items():
        logs = sorted(glob.glob(os.path.join(results, f"{trainer}__*", "fold_0", "training_log_*.txt")))
        text = "".join(open(p).read() for p in logs)
        runs[trainer] = {"wall_s": wall, "epochs_s": sum(float(x) for x in EPOCH.findall(text)),
                         "epochs": len(EPOCH.findall(text)),
                         "pruning_steps_s": [float(x) for x in STEP.findall(text)],
                         "latency_table_s": sum(float(x) for x in TABLE.findall(text))}
    first = runs[next(iter(runs))]
    for r in runs.values():
        r["wall_vs_first"] = r["wall_s"] / first["wall_s"]
        r["epochs_vs_first"] = r["epochs_s"] / first["epochs_s"]
    return runs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("walls", help="training_times.json: trainer -> wall seconds")
    parser.add_argument("results", help="nnUNet_results/DatasetXXX_Name")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    runs = collect(json.load(open(args.walls)), args.results)
    for trainer, r in runs.items():
        print(f"{trainer:<52} wall {r['wall_s']:7.1f} s ({r['wall_vs_first']:.2f}x)  epochs {r['epochs_s']:7.1f} s "
              f"({r['epochs_vs_first']:.2f}x)  steps {sum(r['pruning_steps_s']):5.1f} s  table {r['latency_table_s']:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": "python scripts/collect_training_times.py " + " ".join(
                sys.argv[1:] if argv is None else argv), "runs": runs}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
