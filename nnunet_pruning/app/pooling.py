"""``nnunet-pruning pool-dice``: test Dice pooled over several benchmark workspaces (other synthetic seeds or
datasets), paired.

Each run is keyed by its workspace and fold, so a trainer is paired with the baseline (and ``reference``) on the
same data split only; the differences of every workspace are pooled into one mean, sd and 95% t interval (n - 1
degrees of freedom over all pairs), as the benchmark's own report does within one workspace. A workspace gives
its invocation's runs and every other run scored in it before (``other_runs``).
"""

from __future__ import annotations

import json
import os
import statistics
import time

from nnunet_pruning.app.benchmark_report import plot_dice_runs
from nnunet_pruning.app.run_statistics import difference_text, paired_difference
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.files import write_json

__all__ = ["read_results", "pooled_runs", "summarise", "table_lines", "classes", "per_class_lines", "pool_dice",
           "add_parser"]


def read_results(path: str) -> dict:
    """A benchmark's results.json, given as the file or its workspace folder; a one-line error otherwise."""
    file = os.path.join(path, "results.json") if os.path.isdir(path) else path
    try:
        with open(file) as f:
            result = json.load(f)
    except FileNotFoundError:
        raise PruningError(f"{path}: no benchmark results.json there (run nnunet-pruning benchmark -o "
                           f"{path if os.path.isdir(path) else 'FOLDER'} first)") from None
    except (OSError, ValueError) as e:
        raise PruningError(f"{file}: not a readable results.json ({str(e).splitlines()[0]})") from None
    if not isinstance(result, dict) or not isinstance(result.get("runs"), list):
        raise PruningError(f"{file}: no list of runs in it; is it a benchmark's results.json?")
    return result


def pooled_runs(results: list[dict], trainers: list[str], label: str | None = None) -> dict[str, dict[str, float]]:
    """``{trainer: {"<workspace index>/<fold>": test Dice}}`` over every results.json given: its invocation's runs
    and every other run scored in that workspace (``other_runs``); with ``label``, that class's Dice (runs
    without it are left out)."""
    runs: dict[str, dict[str, float]] = {t: {} for t in trainers}
    for i, result in enumerate(results):
        for run in result["runs"] + result.get("other_runs", []):
            dice = run.get("test_dice") if label is None else run.get("test_dice_per_class", {}).get(label)
            if run["trainer"] in runs and dice is not None:
                runs[run["trainer"]][f"{i}/{run['fold']}"] = float(dice)
    missing = [t for t, values in runs.items() if not values]
    if missing:
        raise PruningError(f"no run of {missing[0]} in any of the results given" if label is None else
                           f"no run of {missing[0]} in the results given has a Dice of class {label}")
    return runs


def classes(results: list[dict]) -> dict[str, str]:
    """``{label: name}`` of the classes the first workspace scored (its ``setup.labels``, else the label)."""
    names = results[0].get("setup", {}).get("labels") or {}
    found = {c for r in results[0]["runs"] for c in r.get("test_dice_per_class", {})}
    return {c: names.get(c, f"class {c}") for c in sorted(found, key=lambda c: (len(c), c))}


def per_class_lines(results: list[dict], trainers: list[str]) -> tuple[list[str], dict]:
    """Per class, every trainer's pooled paired difference to the baseline: markdown lines and
    ``{label: {trainer: difference}}``."""
    labels = classes(results)
    if not labels:
        raise PruningError("--per-class: the results hold no per-class Dice (benchmarks before 2026-11-28 did not "
                           "keep it)")
    found = {}
    for c in labels:
        runs = pooled_runs(results, trainers, c)
        found[c] = {row["trainer"]: row["vs_baseline"] for row in summarise(runs, trainers, None)[1:]}
    lines = [f"Per class: test Dice minus {trainers[0]}'s, pooled pairs (95% CI), higher in:", "",
             "| trainer |" + "".join(f" {name} ({c}) |" for c, name in labels.items()),
             "|---|" + "---|" * len(labels)]
    lines += [f"| {t} |" + "".join(f" {_diff_text(found[c][t])} |" for c in labels) for t in trainers[1:]]
    return lines, found


def summarise(runs: dict[str, dict[str, float]], trainers: list[str], reference: str | None) -> list[dict]:
    """Per trainer: runs, mean, sd, and the pooled paired difference to the first trainer (and ``reference``) with
    the number of pairs in which it is higher."""
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
    """A pooled difference: mean, 95% interval, and in how many pairs the trainer is higher."""
    return "-" if not d else f"{difference_text(d)}, higher in {d['higher']} of {d['n']}"


def table_lines(rows: list[dict], trainers: list[str], reference: str | None) -> list[str]:
    """The pooled figures as a markdown table."""
    lines = [f"| trainer | runs | mean +- sd | vs {trainers[0]} (95% CI) |"
             + (f" vs {reference} (95% CI) |" if reference else ""),
             "|---|---|---|---|" + ("---|" if reference else "")]
    for r in rows:
        sd = f" +- {r['sd']:.3f}" if r["sd"] is not None else ""
        lines.append(f"| {r['trainer']} | {r['runs']} | {r['mean']:.3f}{sd} | {_diff_text(r.get('vs_baseline'))} |"
                     + (f" {_diff_text(r.get('vs_reference'))} |" if reference else ""))
    return lines


def pool_dice(paths: list[str], trainers: list[str] | None = None, reference: str | None = None,
              json_path: str | None = None, plot: str | None = None, command: str = "nnunet-pruning pool-dice",
              say=print, per_class: bool = False) -> list[dict]:
    """Pool the benchmark workspaces (or their results.json) ``paths``; print the table, write ``json_path`` and the
    ``plot`` when given; returns the rows. ``trainers`` (the first is the baseline): default, the first
    workspace's benchmarked trainers. ``per_class``: also every class's pooled differences to the baseline."""
    if trainers is not None and len(trainers) < 2:
        raise PruningError("--trainers needs at least two trainers: the baseline first, then the ones to pool")
    if trainers is not None and len(set(trainers)) != len(trainers):
        raise PruningError(f"a trainer is listed twice ({' '.join(trainers)}); list each once")
    results = [read_results(p) for p in paths]
    trainers = list(trainers or results[0].get("setup", {}).get("trainers") or [])
    if len(trainers) < 2:
        raise PruningError("name the trainers to pool (--trainers BASELINE T2 ...): the first results.json does "
                           "not say which it benchmarked")
    if reference is not None and reference not in trainers:
        raise PruningError(f"--reference {reference} is not one of the trainers ({' '.join(trainers)})")
    runs = pooled_runs(results, trainers)
    rows = summarise(runs, trainers, reference)
    say(f"test Dice pooled over {len(results)} workspace{'s' if len(results) > 1 else ''} ({', '.join(paths)}); "
        "pairs: same workspace, same fold")
    for line in table_lines(rows, trainers, reference):
        say(line)
    by_class = None
    if per_class:
        lines, by_class = per_class_lines(results, trainers)
        for line in ["", *lines]:
            say(line)
    if json_path:
        write_json({"command": command, "date": time.strftime("%Y-%m-%d"),
                    "workspaces": [os.path.abspath(p) for p in paths], "trainers": trainers, "reference": reference,
                    "rows": rows, **({"per_class_vs_baseline": by_class} if by_class else {})}, json_path)
        say(f"wrote {json_path}")
    if plot:
        plot_dice_runs([{"trainer": r["trainer"], "dice_mean": r["mean"], "dice_sd": r["sd"]} for r in rows],
                       [{"trainer": t, "test_dice": d} for t in trainers for d in runs[t].values()], plot,
                       f"test Dice per run (dots) over {len(results)} workspace{'s' if len(results) > 1 else ''}, "
                       "mean +- sd")
        say(f"wrote {plot}")
    return rows


def add_parser(sub) -> None:
    """The ``pool-dice`` subcommand of ``nnunet-pruning``."""
    p = sub.add_parser("pool-dice", help="test Dice of several benchmark workspaces (other seeds or datasets) "
                                         "pooled, paired within each workspace and fold")
    p.add_argument("results", nargs="+", metavar="WORKSPACE",
                   help="benchmark output folders (or their results.json)")
    p.add_argument("--trainers", nargs="+", metavar="TRAINER",
                   help="the first is the baseline (default: the trainers the first workspace's last benchmark ran)")
    p.add_argument("--reference", metavar="TRAINER", help="also pair every trainer with this one (default: none)")
    p.add_argument("--per-class", action="store_true",
                   help="also each class's pooled differences to the baseline (default: off)")
    p.add_argument("--json", help="write the pooled figures here (default: none)")
    p.add_argument("--plot", help="write a PNG of every run's test Dice (dots) and each mean +- sd here "
                                  "(default: none)")
    p.set_defaults(func=_cmd_pool_dice)


def _cmd_pool_dice(args) -> int:
    pool_dice(args.results, args.trainers, args.reference, args.json, args.plot, args.command_line,
              per_class=args.per_class)
    return 0
