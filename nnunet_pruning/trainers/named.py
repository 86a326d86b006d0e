"""Trainer names that carry their settings: any method on any budget by name, no Python subclass needed.

nnU-Net users pick budgets by trainer name (``nnUNetTrainer_250epochs``). The same works here::

    nnUNetTrainer<METHOD>[_keep<P>][_<E>epochs][_<I>iters][_warmup<W>][_minw<M>][_fullres<F>][_cpu<T>][_demo|_smoke]
    nnUNetTrainerFlatUNet[<WIDTH>][_<E>epochs][_<I>iters][_demo|_smoke]
    nnUNetTrainerStock[_<E>epochs][_<I>iters][_demo|_smoke]

``METHOD`` is a pruning method of :data:`~nnunet_pruning.trainers.registry.METHODS` (``STAMP``, ``STAMPFlops``,
``RandomLargest``, ``STAMPRandomChannel``, ``STAMPLatency``, ``RandomLargestLatency``, and the ablations);
``keep<P>`` keeps at most P% of the method's target metric (parameters; GFLOPs for STAMPFlops; the measured
forward time for the latency methods, on the training device or, with ``cpu<T>``, on the CPU with T threads);
``<E>epochs`` and ``<I>iters`` are nnU-Net's epochs and training iterations per epoch; ``warmup<W>`` the epochs
before the first pruning step; ``minw<M>`` the narrowest a layer may become; ``fullres<F>`` the narrowest a
full-resolution layer may become (thin structures: docs/results.md, the ``fine`` task); ``demo`` and ``smoke`` are the
preset budgets of :data:`~nnunet_pruning.trainers.budgets.PRESETS` (instead of epochs and iterations; with
``warmup<W>`` the preset's steps start after W epochs).
Settings come in this order, each at most once. Without a preset the pruning schedule is fitted to the epoch
count (:meth:`~nnunet_pruning.core.schedule.PruningSchedule.fitted`), so every named variant reaches its target.

The classes are made on first use by name, through the module-level ``__getattr__`` here and in the module
``nnUNet_extTrainer`` points at: nnU-Net's own lookup (train, ``--c``, ``--val``, predict, find_best,
export), ``pickle`` and ``count``/``compare`` all find them. The model folder
``<name>__<plans>__<configuration>`` records the settings, so the stock commands rebuild the same trainer.
"""

from __future__ import annotations

import contextlib
import re
import sys
from dataclasses import dataclass, replace

from nnunet_pruning.core.errors import PruningError

__all__ = ["GRAMMAR", "PATTERNS", "SHOWN_METHODS", "EXAMPLES", "NamedTrainer", "parse_trainer_name", "named_trainer_class", "quiet_lookups",
           "module_getattr"]

#: the pruning methods a name may start with, as the grammar shows them (the ablations are accepted too)
SHOWN_METHODS = ("STAMP", "STAMPFlops", "RandomLargest", "STAMPRandomChannel", "STAMPLatency", "RandomLargestLatency")
#: the three name patterns, as the docs show them (tests/trainers/test_named.py checks README and getting-started)
PATTERNS = ("nnUNetTrainer<METHOD>[_keep<P>][_<E>epochs][_<I>iters][_warmup<W>][_minw<M>][_fullres<F>][_cpu<T>][_demo|_smoke]",
            "nnUNetTrainerFlatUNet[<WIDTH>][_<E>epochs][_<I>iters][_demo|_smoke]",
            "nnUNetTrainerStock[_<E>epochs][_<I>iters][_demo|_smoke]")
GRAMMAR = (f"{PATTERNS[0]} with METHOD one of {', '.join(SHOWN_METHODS)} (cpu<T>: latency measured on the CPU with "
           f"T threads); {PATTERNS[1]}; {PATTERNS[2]}")

#: every one of these resolves (tests/trainers/test_named.py); the docs show them
EXAMPLES = ("nnUNetTrainerSTAMP_keep10", "nnUNetTrainerSTAMP_250epochs", "nnUNetTrainerRandomLargest_keep10_250epochs",
            "nnUNetTrainerSTAMPFlops_keep30", "nnUNetTrainerSTAMP_keep10_100epochs_warmup10_minw8",
            "nnUNetTrainerSTAMP_250epochs_fullres24",
            "nnUNetTrainerRandomLargest_keep10_4epochs_5iters", "nnUNetTrainerStock_4epochs_5iters",
            "nnUNetTrainerFlatUNet48", "nnUNetTrainerFlatUNet_250epochs", "nnUNetTrainerFlatUNet24_100epochs_50iters",
            "nnUNetTrainerSTAMPLatency_keep40", "nnUNetTrainerRandomLargestLatency_250epochs_cpu2",
            "nnUNetTrainerSTAMP_demo", "nnUNetTrainerStock_demo")

_FLAT = re.compile(r"FlatUNet(\d*)$")
#: (setting, pattern) in the one order they may appear
_SETTINGS = (("keep", re.compile(r"keep(\d+)$")), ("epochs", re.compile(r"(\d+)epochs$")),
             ("iters", re.compile(r"(\d+)iters$")), ("warmup", re.compile(r"warmup(\d+)$")),
             ("minw", re.compile(r"minw(\d+)$")), ("fullres", re.compile(r"fullres(\d+)$")),
             ("cpu", re.compile(r"cpu(\d+)$")),
             ("preset", re.compile(r"(demo|smoke)$")))
_ORDER = ", ".join(key for key, _ in _SETTINGS[:-1]) + ", demo/smoke"
#: the settings a kind of method takes
_ALLOWED = {"pruning": ("keep", "epochs", "iters", "warmup", "minw", "fullres", "cpu", "preset"),
            "flat": ("epochs", "iters", "preset"), "stock": ("epochs", "iters", "preset")}
_KIND_WORDS = {"flat": "the Flat U-Net", "stock": "stock nnU-Net"}
_MAX_WIDTH = 1024

_classes: dict[str, type] = {}
_quiet = False


@dataclass(frozen=True)
class NamedTrainer:
    """What a trainer name says (``None``: the method's own setting)."""

    name: str
    method: str
    keep_percent: int | None = None
    epochs: int | None = None
    iterations: int | None = None
    warmup_epochs: int | None = None
    min_width: int | None = None
    min_width_full_resolution: int | None = None
    flat_width: int | None = None
    cpu_threads: int | None = None
    preset: str | None = None


def _malformed(name: str, why: str) -> PruningError:
    return PruningError(f"trainer name {name} is malformed: {why}; names are {GRAMMAR}, e.g. "
                        f"{', '.join(EXAMPLES[:3])}")


def _pruning_epochs(values: dict) -> int:
    """The epochs a pruning method trains on the budget the name's settings give."""
    if "preset" in values:
        from nnunet_pruning.trainers.budgets import PRESETS

        return PRESETS[values["preset"]].epochs_of(True)
    return values.get("epochs", 1000)


def parse_trainer_name(name: str) -> NamedTrainer | None:
    """The settings a trainer name carries; ``None`` for a name that is not of this grammar at all (or that
    is a method's own class).

    A name that starts like one of this package's trainers but breaks the grammar raises a one-line
    :class:`PruningError` that shows the grammar.
    """
    from nnunet_pruning.trainers.registry import METHODS, PREFIX

    if not name.startswith(PREFIX):
        return None
    head, *tokens = name[len(PREFIX):].split("_")
    flat = _FLAT.match(head)
    token = "FlatUNet" if flat else head
    if token not in METHODS:
        return None
    method = METHODS[token]
    if not tokens and not (flat and flat.group(1)):
        return None  # the method's own class (nnunet_pruning.trainers), not a named variant
    values: dict = {}
    position = 0
    for text in tokens:
        for index, (key, pattern) in enumerate(_SETTINGS):
            match = pattern.match(text)
            if match:
                break
        else:
            raise _malformed(name, f"'{text}' is not a setting")
        if key not in _ALLOWED[method.kind]:
            raise _malformed(name, f"'{text}' does not apply to {_KIND_WORDS[method.kind]}")
        if key in values:
            raise _malformed(name, f"'{key}' is given twice")
        if index < position:
            raise _malformed(name, f"'{text}' comes too late (order: {_ORDER})")
        if key == "cpu" and not method.latency:
            latency = [t for t, m in METHODS.items() if m.latency]
            raise _malformed(name, f"'{text}' applies only to {' and '.join(latency)} (a latency target)")
        position = index
        values[key] = match.group(1) if key == "preset" else int(match.group(1))
    if "preset" in values and {"epochs", "iters"} & set(values):
        raise _malformed(name, f"'{values['preset']}' is a budget of its own: give it without epochs or iters")
    if "keep" in values and not 1 <= values["keep"] <= 99:
        raise _malformed(name, f"keep{values['keep']} is outside 1-99 (percent of the target metric to keep)")
    for key in ("epochs", "iters", "minw", "fullres", "cpu"):
        if key in values and values[key] < 1:
            raise _malformed(name, f"{key} must be at least 1")
    if "warmup" in values and values["warmup"] >= _pruning_epochs(values):
        raise _malformed(name, f"warmup{values['warmup']} leaves no epoch to prune")
    width = None
    if flat and flat.group(1):
        width = int(flat.group(1))
        if not 1 <= width <= _MAX_WIDTH:
            raise _malformed(name, f"Flat U-Net width {width} is outside 1-{_MAX_WIDTH}")
    return NamedTrainer(name=name, method=token, keep_percent=values.get("keep"), epochs=values.get("epochs"),
                        iterations=values.get("iters"), warmup_epochs=values.get("warmup"),
                        min_width=values.get("minw"), min_width_full_resolution=values.get("fullres"),
                        flat_width=width, cpu_threads=values.get("cpu"),
                        preset=values.get("preset"))


def _make_class(named: NamedTrainer) -> type:
    from nnunet_pruning.trainers.budgets import PRESETS, BudgetedTrainer, budget_of
    from nnunet_pruning.trainers.registry import METHODS, summary_of

    method = METHODS[named.method]
    base = method.cls
    pruning = method.kind == "pruning"
    budget = PRESETS[named.preset] if named.preset else budget_of(named.epochs, named.iterations)
    budget = budget.for_method(pruning)
    attributes = {"__module__": __name__, "__qualname__": named.name, "named_settings": named, "budget": budget}
    if method.kind == "flat":
        attributes["flat_width"] = named.flat_width
    if pruning:
        keep = None if named.keep_percent is None else named.keep_percent / 100
        schedule = budget.schedule(base.pruning_schedule, getattr(base, "schedule_changes", None), keep,
                                   named.warmup_epochs, named.min_width)
        if named.min_width_full_resolution is not None:
            schedule = replace(schedule, min_width_full_resolution=named.min_width_full_resolution)
        if named.cpu_threads is not None:
            schedule = replace(schedule, latency_device="cpu", latency_threads=named.cpu_threads)
        attributes["pruning_schedule"] = schedule
    # a pruning method's own summary names its default target: the name's may differ (describe_trainer has it)
    what = (f"Flat U-Net, every stage {named.flat_width} filters." if named.flat_width
            else f"the method of {base.__name__}, to the target its name sets;" if pruning else summary_of(base))
    attributes["__doc__"] = (f"{named.name}: {what} {budget.epochs} epochs x {budget.iterations} iterations (made "
                             f"from its name, see nnunet_pruning.trainers.named).")
    return type(named.name, (BudgetedTrainer, base), attributes)


def named_trainer_class(name: str) -> type | None:
    """The class a settings-carrying name describes (made once, then reused); ``None`` if not of the grammar."""
    if name in _classes:
        return _classes[name]
    named = parse_trainer_name(name)
    if named is None:
        return None
    _classes[name] = _make_class(named)
    return _classes[name]


@contextlib.contextmanager
def quiet_lookups():
    """While active, a malformed name looked up by attribute is just missing (for our own lookups)."""
    global _quiet
    before, _quiet = _quiet, True
    try:
        yield
    finally:
        _quiet = before


def module_getattr(name: str):
    """A module ``__getattr__``: named trainers resolve; a malformed one ends ``nnUNetv2_*`` in one line.

    A malformed name is still left to other ``nnUNet_extTrainer`` folders that define it (a user's own
    subclass of that name), and inside :func:`quiet_lookups` it is simply missing.
    """
    try:
        cls = named_trainer_class(name)
    except PruningError as e:
        if _quiet or _defined_elsewhere(name):
            raise AttributeError(name) from None
        print(f"nnunet-pruning: error: {e}", file=sys.stderr, flush=True)
        from nnunet_pruning.trainers.guards import TrainerError

        raise TrainerError(f"nnunet-pruning: error: {e}") from None
    if cls is None:
        raise AttributeError(name)
    return cls


def _defined_elsewhere(name: str) -> bool:
    """Whether another folder of ``nnUNet_extTrainer`` defines a class of this name."""
    import os

    from nnunet_pruning.adapter.environment import ext_trainer_folder

    ours = os.path.abspath(ext_trainer_folder())
    folders = [f for f in os.environ.get("nnUNet_extTrainer", "").split(os.pathsep)
               if f.strip() and os.path.abspath(f) != ours and os.path.isdir(f)]
    if not folders:
        return False
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class

    with quiet_lookups():
        return any(recursive_find_python_class(f, name, None, cleanup_imports_from_base_folder=True) is not None
                   for f in folders)


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    return module_getattr(name)
