"""``nnunet-pruning trainers``: every method with its target and schedule, the budgets and the grammar, all read
from :mod:`nnunet_pruning.trainers.registry`."""

from __future__ import annotations

__all__ = ["describe_trainer", "catalogue", "format_catalogue"]


def describe_trainer(cls) -> dict:
    """``{name, method, target, schedule}`` of a trainer class, read from the class itself."""
    from nnunet_pruning.trainers.registry import budget_of_class, schedule_text, summary_of

    b = budget_of_class(cls)
    budget = f"{b.epochs} epochs x {b.iterations} iterations"
    schedule = getattr(cls, "pruning_schedule", None)
    if schedule is None:
        width = getattr(cls, "flat_width", None)
        method = f"Flat U-Net, every stage {width} filters" if width else summary_of(cls)
        return {"name": cls.__name__, "method": method, "target": "-", "schedule": budget}
    reach = schedule.last_pruning_epoch() + 1
    note = "" if reach <= b.epochs else f"; CANNOT reach its target in {b.epochs} epochs (needs {reach})"
    return {"name": cls.__name__, "method": summary_of(cls),
            "target": f"keep <= {schedule.keep_fraction:.0%} of the {schedule.target_metric}"
                      + (" (measured forward time at the patch size, "
                         + (f"CPU, {schedule.latency_threads} threads)" if schedule.latency_device == "cpu"
                            else "training device)") if schedule.target_metric == "latency" else ""),
            "schedule": f"{budget}; {schedule_text(schedule, digits=1, of_what='')}, target after epoch {reach}{note}"}


def catalogue(include_extra: bool = False) -> list[dict]:
    """Rows for every method (with ``include_extra``: also the ablations and the channels-last baseline)."""
    from nnunet_pruning.trainers.registry import METHODS

    return [describe_trainer(m.cls) for m in METHODS.values() if include_extra or not m.extra]


def format_catalogue(include_extra: bool = False) -> str:
    from nnunet_pruning.trainers.budgets import PRESETS
    from nnunet_pruning.trainers.named import EXAMPLES, PATTERNS, SHOWN_METHODS, named_trainer_class

    lines = ["Trainers (use with nnUNetv2_train ... -tr NAME), on nnU-Net's budget of 1000 epochs x 250 iterations:",
             ""]
    for row in catalogue(include_extra):
        lines += [f"  {row['name']}", f"      {row['method']}", f"      {row['target']}; {row['schedule']}"]
    lines += ["", "Any method on any budget by name (no Python needed):", *(f"  {p}" for p in PATTERNS),
              f"  METHOD: {', '.join(SHOWN_METHODS)}", "",
              "  keep<P>: keep at most P% of the target metric; <E>epochs, <I>iters: nnU-Net's epochs and iterations",
              "  per epoch; warmup<W>: epochs before the first step; minw<M>: the narrowest layer; fullres<F>: the",
              "  narrowest full-resolution layer (keeps thin structures); cpu<T> (latency methods): measure the",
              "  forward time on the CPU with T threads, not on the training device. The schedule is",
              "  fitted to the epochs (same shares as the 1000-epoch default), so every name reaches its target.",
              "  Preset budgets (instead of epochs, iterations and warm-up):"]
    lines += [f"    _{name}: {b.epochs} epoch{'s' if b.epochs > 1 else ''} x {b.iterations} iterations; {b.summary}"
              for name, b in PRESETS.items()]
    lines += ["", "Examples:"]
    for name in EXAMPLES:
        cls = named_trainer_class(name)
        row = describe_trainer(cls)
        width = getattr(cls, "flat_width", None)
        detail = f"{row['target']}; " if row["target"] != "-" else f"every stage {width} filters; " if width else ""
        lines += [f"  {name}", f"      {detail}{row['schedule']}"]
    if not include_extra:
        lines += ["", "nnunet-pruning trainers --all also lists STAMP's ablations and the channels-last stock baseline."]
    return "\n".join(lines)
