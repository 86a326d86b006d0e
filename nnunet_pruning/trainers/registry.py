"""Every trainer this package offers, from one table: ``nnunet-pruning trainers``, the docs' tables
(``tests/trainers/test_registry.py`` checks them), nnU-Net's lookup and the name grammar all read it.

A trainer name is a method (one class each, :data:`METHODS`) and a budget (:mod:`.budgets`):
``nnUNetTrainerSTAMP`` is STAMP on nnU-Net's 1000 x 250, ``nnUNetTrainerSTAMP_250epochs`` or
``nnUNetTrainerSTAMP_demo`` another budget (:mod:`.named` makes those classes on first use).
"""

from __future__ import annotations

from dataclasses import dataclass

from nnunet_pruning.core.pruner import full_resolution_floor

from .ablations import (nnUNetTrainerSTAMPFlopsWeighted, nnUNetTrainerSTAMPFullResFloor, nnUNetTrainerSTAMPNoDropout,
                        nnUNetTrainerSTAMPScoreAfterTarget, nnUNetTrainerSTAMPSignedSum, nnUNetTrainerSTAMPThreeSteps,
                        nnUNetTrainerSTAMPTwoSteps)
from .budgets import DEFAULT_BUDGET, PRESETS, Budget
from .flat_unet import nnUNetTrainerFlatUNet
from .methods import (nnUNetTrainerRandomLargest, nnUNetTrainerRandomLargestLatency, nnUNetTrainerSTAMP,
                      nnUNetTrainerSTAMPFlops, nnUNetTrainerSTAMPLatency, nnUNetTrainerSTAMPRandomChannel)
from .stock import nnUNetTrainerStock, nnUNetTrainerStockChannelsLast

__all__ = ["Method", "METHODS", "TRAINERS", "PREFIX", "method_of", "summary_of", "budget_of_class",
           "width_text", "schedule_text", "methods_table", "budgets_table", "schedules_table"]

PREFIX = "nnUNetTrainer"


@dataclass(frozen=True)
class Method:
    """A method: its class, its kind (``stock``, ``flat`` or ``pruning``) and whether ``trainers`` shows it
    by default (``extra``: ablations and the channels-last stock baseline, shown with ``--all``)."""

    cls: type
    kind: str
    extra: bool = False

    @property
    def token(self) -> str:
        """METHOD in ``nnUNetTrainer<METHOD>_...``."""
        return self.cls.__name__[len(PREFIX):]

    @property
    def latency(self) -> bool:
        return self.kind == "pruning" and self.cls.pruning_schedule.target_metric == "latency"


#: the one list: every method, in the order ``trainers`` and the docs show them
METHODS = {m.token: m for m in (
    Method(nnUNetTrainerSTAMP, "pruning"),
    Method(nnUNetTrainerSTAMPFlops, "pruning"),
    Method(nnUNetTrainerRandomLargest, "pruning"),
    Method(nnUNetTrainerSTAMPRandomChannel, "pruning"),
    Method(nnUNetTrainerSTAMPLatency, "pruning"),
    Method(nnUNetTrainerRandomLargestLatency, "pruning"),
    Method(nnUNetTrainerFlatUNet, "flat"),
    Method(nnUNetTrainerStock, "stock"),
    Method(nnUNetTrainerStockChannelsLast, "stock", extra=True),
    Method(nnUNetTrainerSTAMPScoreAfterTarget, "pruning", extra=True),
    Method(nnUNetTrainerSTAMPSignedSum, "pruning", extra=True),
    Method(nnUNetTrainerSTAMPTwoSteps, "pruning", extra=True),
    Method(nnUNetTrainerSTAMPThreeSteps, "pruning", extra=True),
    Method(nnUNetTrainerSTAMPFullResFloor, "pruning", extra=True),
    Method(nnUNetTrainerSTAMPFlopsWeighted, "pruning", extra=True),
    Method(nnUNetTrainerSTAMPNoDropout, "pruning", extra=True),
)}

#: the methods' own classes by name (nnU-Net's default budget); every other name is made by :mod:`.named`
TRAINERS = {m.cls.__name__: m.cls for m in METHODS.values()}


def method_of(cls) -> Method | None:
    """The method a trainer class is (or derives from), if it is one of this package's."""
    for method in METHODS.values():
        if cls is method.cls:
            return method
    named = getattr(cls, "named_settings", None)
    return METHODS.get(named.method) if named is not None else None


def summary_of(cls) -> str:
    """The first paragraph of a class's docstring, on one line: what the trainer does (the docs' tables)."""
    paragraph = (cls.__doc__ or cls.__name__).strip().split("\n\n")[0]
    return " ".join(paragraph.split()).replace("``", "`")


def budget_of_class(cls) -> Budget:
    """The budget a trainer class trains with (nnU-Net's default for classes without one)."""
    return getattr(cls, "budget", DEFAULT_BUDGET)


def width_text(schedule) -> str:
    """``min width M`` and, where the schedule has one, the full-resolution floor."""
    floor = full_resolution_floor(schedule)
    return f"min width {schedule.min_width}" + (f", {floor} at full resolution" if floor else "")


def schedule_text(schedule, digits: int = 0, of_what: str = " of the original") -> str:
    """``warm-up W, a step every E epoch(s) of S%<of_what>, min width M[, F at full resolution]``."""
    return (f"warm-up {schedule.warmup_epochs}, a step every {schedule.every_epochs} epoch(s) of "
            f"{schedule.step_fraction:.{digits}%}{of_what}, {width_text(schedule)}")


def methods_table(extra: bool = False) -> str:
    """The README's table of trainers (markdown), one row per method."""
    rows = ["| trainer | what it does | default budget |", "|---|---|---|"]
    for m in METHODS.values():
        if m.extra and not extra:
            continue
        budget = "nnU-Net's 1000 x 250" + (f"; {schedule_text(m.cls.pruning_schedule)}" if m.kind == "pruning" else "")
        rows.append(f"| `{m.cls.__name__}` | {summary_of(m.cls)} | {budget} |")
    return "\n".join(rows)


def budgets_table() -> str:
    """The README's table of budgets (markdown): what each name suffix means."""
    rows = ["| name ends | budget | pruning schedule |", "|---|---|---|",
            f"| (nothing) | {DEFAULT_BUDGET.epochs} x {DEFAULT_BUDGET.iterations}, {DEFAULT_BUDGET.summary} | the "
            f"method's own (table above) |",
            "| `_<E>epochs`, `_<I>iters`, both | E x I (nnU-Net's value for the part left out) | the method's, fitted to "
            "E epochs: warm-up and interval scaled, the last step by 20% of training, so the target is reached |"]
    for name, b in PRESETS.items():
        epochs = f"{b.epochs}" + (f" ({b.pruning_epochs} for the pruning methods)" if b.pruning_epochs else "")
        settings = dict(b.pruning)
        step = (f"{b.pruning_steps} equal steps, one every {settings['every_epochs']} epoch" if b.pruning_steps else
                f"a step every {settings['every_epochs']} epoch of {settings['step_fraction']:.0%}")
        latency = f" ({b.latency_warmup_epochs} for a latency target)" if b.latency_warmup_epochs is not None else ""
        rows.append(f"| `_{name}` | {epochs} x {b.iterations}: {b.summary} | warm-up {settings['warmup_epochs']}"
                    f"{latency}, {step}, keep {settings['keep_fraction']:.0%} |")
    return "\n".join(rows)


def schedules_table() -> str:
    """docs/methods.md's table of each pruning method's settings (markdown)."""
    rows = ["| trainer | method | target | warm-up | every | step | min width |", "|---|---|---|---|---|---|---|"]
    for m in METHODS.values():
        if m.kind != "pruning" or m.extra:
            continue
        s = m.cls.pruning_schedule
        rows.append(f"| `{m.cls.__name__}` | `{s.method}` | keep <= {s.keep_fraction:.0%} of {s.target_metric} | "
                    f"{s.warmup_epochs} epochs | {s.every_epochs} epochs | {s.step_fraction:.0%} of the original "
                    f"{s.target_metric} | {s.min_width} |")
    return "\n".join(rows)
