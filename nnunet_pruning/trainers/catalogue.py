"""``nnunet-pruning trainers``: every trainer of this package with its method, target and schedule."""

from __future__ import annotations

__all__ = ["describe_trainer", "catalogue", "format_catalogue"]


def describe_trainer(cls) -> dict:
    """``{name, method, target, schedule}`` of a trainer class, read from the class itself."""
    epochs = getattr(cls, "schedule_epochs", 1000)
    iterations = getattr(cls, "schedule_iterations", 250)
    budget = f"{epochs} epochs x {iterations} iterations"
    schedule = getattr(cls, "pruning_schedule", None)
    if schedule is None:
        width = getattr(cls, "flat_width", None)
        flat = hasattr(cls, "flat_width")
        method = (f"Flat U-Net, every stage {width} filters" if width else "Flat U-Net, every stage at the stage-0 "
                  "width") if flat else "stock nnU-Net network"
        return {"name": cls.__name__, "method": method, "target": "-", "schedule": budget}
    reach = schedule.last_pruning_epoch() + 1
    note = "" if reach <= epochs else f"; CANNOT reach its target in {epochs} epochs (needs {reach})"
    return {"name": cls.__name__, "method": schedule.method,
            "target": f"keep <= {schedule.keep_fraction:.0%} of the {schedule.target_metric}"
                      + (" (measured forward time at the patch size, "
                         + (f"CPU, {schedule.latency_threads} threads)" if schedule.latency_device == "cpu"
                            else "training device)") if schedule.target_metric == "latency" else ""),
            "schedule": f"{budget}; warm-up {schedule.warmup_epochs}, a step every {schedule.every_epochs} "
                        f"epoch(s) of {schedule.step_fraction:.1%}, min width {schedule.min_width}, target after "
                        f"epoch {reach}{note}"}


def catalogue(include_short: bool = False) -> list[dict]:
    """Rows for every trainer this package offers by class (short test/demo variants optional)."""
    from nnunet_pruning.trainers import TRAINERS

    return [describe_trainer(cls) for name, cls in TRAINERS.items()
            if include_short or not name.endswith(("_smoke", "_demo"))]


def format_catalogue(include_short: bool = False) -> str:
    from nnunet_pruning.trainers.named import EXAMPLES, GRAMMAR, named_trainer_class

    lines = ["Trainers (use with nnUNetv2_train ... -tr NAME):", ""]
    for row in catalogue(include_short):
        lines += [f"  {row['name']}", f"      {row['method']}; {row['target']}", f"      {row['schedule']}"]
    lines += ["", "Any budget by name (no Python needed):", f"  {GRAMMAR}", "",
              "  keep<P>: keep at most P% of the target metric; <E>epochs, <I>iters: nnU-Net's epochs and iterations",
              "  per epoch; warmup<W>: epochs before the first step; minw<M>: the narrowest layer; cpu<T> (latency",
              "  methods): measure the forward time on the CPU with T threads, not on the training device. The schedule is",
              "  fitted to the epochs (same shares as the 1000-epoch default), so every name reaches its target.",
              "", "Examples:"]
    for name in EXAMPLES:
        row = describe_trainer(named_trainer_class(name))
        lines += [f"  {name}", f"      {row['method']}; {row['target']}; {row['schedule']}"]
    return "\n".join(lines)
