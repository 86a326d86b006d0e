"""Test Dice over several runs: per trainer mean +- sd, and the paired difference to a baseline fold by fold
(or run by run) with a 95% t interval; what ``benchmark`` reports within a workspace and ``pool-dice`` across
workspaces."""

from __future__ import annotations

import math
import statistics

from nnunet_pruning.core.errors import PruningError

__all__ = ["paired_difference", "difference_text", "summarise_runs"]


def _t_quantile(n: int) -> float:
    """The two-sided 95% quantile of Student's t with ``n - 1`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1))


def paired_difference(values: dict[str, float], baseline: dict[str, float]) -> dict:
    """Mean of ``values[fold] - baseline[fold]`` over the folds both have, its sd and 95% CI (t, n - 1 df).

    With one common fold the interval is not defined (``None``).
    """
    folds = [f for f in values if f in baseline]
    diffs = [values[f] - baseline[f] for f in folds]
    if not diffs:
        raise PruningError("no fold in common with the baseline; run the same folds for every trainer")
    mean = sum(diffs) / len(diffs)
    if len(diffs) < 2:
        return {"folds": folds, "mean": mean, "sd": None, "ci95": None, "n": 1}
    sd = statistics.stdev(diffs)
    half = _t_quantile(len(diffs)) * sd / math.sqrt(len(diffs))
    return {"folds": folds, "mean": mean, "sd": sd, "ci95": [mean - half, mean + half], "n": len(diffs)}


def difference_text(diff: dict | None, none: str = "-") -> str:
    """A :func:`paired_difference` as the reports print it: mean and 95% interval (``none`` where there is none)."""
    if diff is None:
        return none
    if diff["ci95"] is None:
        return f"{diff['mean']:+.3f} (one run: no CI)"
    return f"{diff['mean']:+.3f} ({diff['ci95'][0]:+.3f} to {diff['ci95'][1]:+.3f})"


def _class_dice(folds: dict[str, dict], label: str) -> dict[str, float]:
    """``{fold: test Dice of class label}`` of the runs that have it."""
    return {f: r["test_dice_per_class"][label] for f, r in folds.items() if label in r.get("test_dice_per_class", {})}


def summarise_runs(runs: list[dict], trainers: list[str], reference: str | None = None) -> list[dict]:
    """Per trainer (in order): Dice mean and sd over folds (overall and per class), the paired difference to the
    first trainer and, with ``reference``, to that trainer too (e.g. STAMP's default against its ablations),
    sizes, time."""
    by_trainer = {t: {r["fold"]: r for r in runs if r["trainer"] == t} for t in trainers}
    baseline = {f: r["test_dice"] for f, r in by_trainer[trainers[0]].items()}
    if reference is not None and reference not in by_trainer:
        raise PruningError(f"the reference trainer {reference} is not one of the benchmarked trainers")
    second = None if reference is None else {f: r["test_dice"] for f, r in by_trainer[reference].items()}
    theirs = {}  # {(baseline or reference, class): {fold: Dice}}, read once for all trainers

    def per_class_difference(labels, trainer: str, against: str) -> dict:
        """Per class of ``labels`` that ``against`` has: ``trainer``'s Dice minus ``against``'s, fold by fold."""
        for c in labels:
            if (against, c) not in theirs:
                theirs[against, c] = _class_dice(by_trainer[against], c)
        return {c: paired_difference(_class_dice(by_trainer[trainer], c), theirs[against, c])
                for c in labels if theirs[against, c]}

    rows = []
    for trainer in trainers:
        folds = by_trainer[trainer]
        dice = [r["test_dice"] for r in folds.values()]
        row = {"trainer": trainer, "folds": sorted(folds), "n": len(dice), "dice_mean": sum(dice) / len(dice),
               "dice_sd": statistics.stdev(dice) if len(dice) > 1 else None,
               "params_mean": sum(r["params"] for r in folds.values()) / len(dice),
               "gflops_mean": sum(r["gflops"] for r in folds.values()) / len(dice),
               "train_seconds": sum(r.get("train_seconds") or 0 for r in folds.values()),
               "targets_missed": {f: r.get("pruning", "") for f, r in folds.items() if r.get("target_reached") is False}}
        row["paired_difference"] = None if trainer == trainers[0] else paired_difference(
            {f: r["test_dice"] for f, r in folds.items()}, baseline)
        if second is not None:
            row["paired_difference_to_reference"] = None if trainer in (trainers[0], reference) else \
                paired_difference({f: r["test_dice"] for f, r in folds.items()}, second)
        classes = sorted({c for r in folds.values() for c in r.get("test_dice_per_class", {})}, key=str)
        row["dice_per_class_mean"] = {c: sum(r["test_dice_per_class"][c] for r in folds.values()) / len(dice)
                                      for c in classes if all(c in r.get("test_dice_per_class", {})
                                                              for r in folds.values())}
        row["paired_difference_per_class"] = None if trainer == trainers[0] else per_class_difference(
            row["dice_per_class_mean"], trainer, trainers[0])
        if second is not None:
            row["paired_difference_per_class_to_reference"] = None if trainer in (trainers[0], reference) else \
                per_class_difference(row["dice_per_class_mean"], trainer, reference)
        rows.append(row)
    return rows
