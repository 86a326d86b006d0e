"""``pruning_log.json``, the file every pruning run writes into its fold folder, read in one place.

It holds the schedule, the unpruned network's size, every step, and how the run ended: ``target_reached``, or
``outcome`` says why it stopped short (nothing left to cut, every layer at its minimum width, out of epochs;
null while it still prunes). ``count``, ``compare``, ``benchmark`` and the reports flag every run that did not
reach its target, with the figure it reached.
"""

from __future__ import annotations

import json
import os

__all__ = ["PRUNING_LOG", "read_pruning_log", "target_status", "describe_status"]

PRUNING_LOG = "pruning_log.json"


def read_pruning_log(fold_dir: str) -> dict | None:
    """The fold's pruning log, or ``None`` when the fold was not pruned."""
    path = os.path.join(fold_dir, PRUNING_LOG)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def target_status(log: dict | None) -> dict | None:
    """``{target_metric, keep_fraction, kept_fraction, target_reached, outcome, step_epochs}`` of a pruning log
    (``None``: unpruned), and ``latency`` (seconds), ``latency_fraction`` and ``latency_device`` when the run
    measured latency. ``step_epochs``: the epoch after which each step ran.

    ``kept_fraction`` is what the last step left of the target metric (1.0 before the first step).
    ``target_reached`` only when the log says so *and* the last step is at the target (logs written before
    outcomes were kept said "reached" for every run that stopped); ``outcome`` is the words for how it ended.
    """
    from nnunet_pruning.core.pruner import full_resolution_floor, outcome_text

    if not log:
        return None
    schedule = log.get("schedule", {})
    metric = schedule.get("target_metric", "params")
    steps = log.get("steps") or []
    kept = steps[-1][f"{metric}_fraction"] if steps else 1.0
    keep = schedule.get("keep_fraction")
    reached = bool(log.get("target_reached")) and (keep is None or kept <= keep + 1e-9)
    outcome = log.get("outcome")
    if outcome is None and log.get("target_reached"):  # an old log: stopped, with or without its target
        outcome = "reached" if reached else "nothing_left_to_cut"
    words = outcome_text("reached" if reached else outcome, full_resolution_floor(schedule))
    if "outcome" not in log and not log.get("target_reached"):
        words = "out of epochs or still pruning"  # a log from before outcomes were kept
    status = {"target_metric": metric, "keep_fraction": keep, "kept_fraction": kept, "target_reached": reached,
              "outcome": words, "step_epochs": [s["epoch"] for s in steps if "epoch" in s]}
    latency = log.get("latency")
    if latency:
        last = steps[-1] if steps else {}
        status.update(latency=last.get("latency", log.get("original", {}).get("latency")),
                      latency_fraction=last.get("latency_fraction", 1.0), latency_device=latency.get("device"))
    return status


def describe_status(status: dict) -> str:
    """``keeps 59.0% of the params, target <= 20%: NOT reached, stopped short: out of epochs (3 steps, after epochs
    49, 59, 69)`` (one phrase for tables and notes)."""
    target = status["keep_fraction"]
    reached = "reached" if status["target_reached"] else f"NOT reached, {status.get('outcome', 'still pruning')}"
    target_text = f"{target:.0%}" if target is not None else "?"
    text = f"keeps {status['kept_fraction']:.1%} of the {status['target_metric']}, target <= {target_text}: {reached}"
    epochs = status.get("step_epochs") or []
    if epochs:  # what the run did; a schedule says what it planned (a latency step may cut more or less)
        listed = ", ".join(map(str, epochs)) if len(epochs) <= 4 else f"{epochs[0]}, {epochs[1]}, ... {epochs[-1]}"
        plural = "s" if len(epochs) > 1 else ""
        text += f" ({len(epochs)} step{plural}, after epoch{plural} {listed})"
    if status.get("latency") is not None:
        text += (f"; measured latency {status['latency'] * 1e3:.1f} ms per forward pass at the patch size "
                 f"({status['latency_fraction']:.1%} of unpruned, {status['latency_device']}, during training)")
    return text
