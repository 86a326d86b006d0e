"""``compare``: trained model folders side by side with the first one (the baseline, usually stock nnU-Net).

For each model and fold it collects what nnU-Net and this package already wrote: the validation Dice
from ``fold_X/validation/summary.json``, params / GFLOPs / widths of the checkpoint's network (the same
code as ``count``), the checkpoint size, and ``pruning_log.json`` when the model was pruned. Measured
inference time is optional (:mod:`nnunet_pruning.app.timing`). :mod:`nnunet_pruning.app.report`
writes the report, CSV, JSON and plots.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from nnunet_pruning.adapter.datasets import matches_dataset, resolve_dataset_folder
from nnunet_pruning.adapter.pruning_logs import describe_status, read_pruning_log, target_status
from nnunet_pruning.core.errors import PruningError

__all__ = ["ModelEntry", "resolve_model_folder", "collect_model", "check_same_task", "summarise",
           "default_images_folder", "check_output_folder", "available_folds", "checkpoint_notes", "target_notes",
           "latency_notes",
           "run_compare"]


@dataclass
class ModelEntry:
    """One model of a comparison: its folder, identity and per-fold measurements."""

    label: str
    folder: str
    trainer: str
    plans: str
    configuration: str
    dataset: str
    folds: dict = field(default_factory=dict)  # fold -> measurements
    inference: dict | None = None

    def as_dict(self) -> dict:
        return {"label": self.label, "folder": self.folder, "trainer": self.trainer, "plans": self.plans,
                "configuration": self.configuration, "dataset": self.dataset, "folds": self.folds,
                "summary": summarise(self), "inference": self.inference}


def resolve_model_folder(model: str, dataset: str | None, configuration: str | None,
                         plans: str = "nnUNetPlans") -> str:
    """A model folder from a path, or from ``TRAINER`` / ``TRAINER__PLANS`` with a dataset and configuration."""
    if os.path.isdir(model):
        return os.path.abspath(model)
    if os.sep in model or model.startswith("."):
        raise PruningError(f"model folder {model} does not exist; pass a folder TRAINER__PLANS__CONFIGURATION "
                           f"or a trainer name with -d and -c")
    if not dataset or not configuration:
        raise PruningError(f"{model} is not a folder; to name models by trainer pass the dataset and "
                           f"configuration too (-d 4 -c 3d_fullres)")
    dataset_folder = resolve_dataset_folder(dataset, "nnUNet_results")
    name = model if "__" in model else f"{model}__{plans}"
    folder = os.path.join(dataset_folder, f"{name}__{configuration}")
    if not os.path.isdir(folder):
        available = sorted(d for d in os.listdir(dataset_folder) if d.endswith(f"__{configuration}"))
        raise PruningError(f"no model {name} for configuration {configuration} in {dataset_folder}; available: "
                           f"{', '.join(available) or 'none'}")
    return folder


def _read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def _validation_dice(fold_dir: str, label: str, fold: str, train_command: str) -> dict:
    path = os.path.join(fold_dir, "validation", "summary.json")
    if not os.path.isfile(path):
        raise PruningError(f"model {label} fold {fold} has no validation/summary.json (training did not finish "
                           f"its validation); run: {train_command} --val")
    summary = _read_json(path)
    try:
        per_class = {k: v["Dice"] for k, v in summary["mean"].items()}
        return {"dice": summary["foreground_mean"]["Dice"], "dice_per_class": per_class,
                "validation_cases": len(summary.get("metric_per_case", []))}
    except (KeyError, TypeError):
        raise PruningError(f"{path} is not an nnU-Net summary.json (no foreground_mean Dice); rerun: "
                           f"{train_command} --val") from None


def collect_model(folder: str, folds: list[str] | None = None, label: str | None = None,
                  checkpoint_name: str | None = None) -> ModelEntry:
    """Measure every requested fold of one model folder (all folds with a checkpoint by default)."""
    from nnunet_pruning.app.count import count_model_folder
    from nnunet_pruning.adapter.networks import model_folder_folds

    folder = os.path.abspath(folder)
    available = dict(model_folder_folds(folder, checkpoint_name))
    plans = _read_json(os.path.join(folder, "plans.json"))
    plans_name = plans.get("plans_name", "?")
    if folds:
        missing = [f for f in folds if f not in available]
        if missing:
            name = label or os.path.basename(folder.rstrip(os.sep)).split("__")[0]
            raise PruningError(f"model {name} has no checkpoint for fold {', '.join(missing)} (it has fold "
                               f"{', '.join(available)}); train it or choose other folds with -f")
    chosen = folds or list(available)
    counted = count_model_folder(folder, checkpoint_name, chosen)
    trainer = counted["trainer"]
    configuration = counted["configuration"]
    label = label or (trainer if plans_name == "nnUNetPlans" else f"{trainer} ({plans_name})")
    entry = ModelEntry(label=label, folder=folder, trainer=trainer, plans=plans_name,
                       configuration=configuration, dataset=plans.get("dataset_name", "?"))
    for fold in chosen:
        fold_dir = os.path.join(folder, f"fold_{fold}")
        command = f"nnUNetv2_train {entry.dataset} {configuration} {fold} -tr {trainer} -p {entry.plans}"
        measured = dict(counted["networks"][f"fold_{fold}"])
        measured.update(_validation_dice(fold_dir, label, fold, command))
        measured["pruning_log"] = read_pruning_log(fold_dir)
        entry.folds[fold] = measured
    return entry


def check_same_task(entries: list[ModelEntry], dataset: str | None = None,
                    configuration: str | None = None) -> None:
    """Refuse models of different datasets or configurations (and ones that do not match -d / -c)."""
    datasets = {e.dataset for e in entries}
    if len(datasets) > 1:
        listing = "; ".join(f"{e.label}: {e.dataset}" for e in entries)
        raise PruningError(f"these models were trained on different datasets ({listing}); compare models of one "
                           f"dataset")
    configurations = {e.configuration for e in entries}
    if len(configurations) > 1:
        listing = "; ".join(f"{e.label}: {e.configuration}" for e in entries)
        raise PruningError(f"these models were trained on different configurations ({listing}); compare models "
                           f"of one configuration")
    if dataset is not None:
        if not matches_dataset(entries[0].dataset, dataset):
            raise PruningError(f"the models were trained on {entries[0].dataset}, not dataset {dataset}")
    if configuration is not None and entries[0].configuration != configuration:
        raise PruningError(f"the models were trained on configuration {entries[0].configuration}, not "
                           f"{configuration}")


def summarise(entry: ModelEntry) -> dict:
    """Means over the model's folds (params and GFLOPs too: pruned folds can differ)."""
    folds = list(entry.folds.values())
    n = len(folds)
    classes = folds[0]["dice_per_class"].keys()
    return {
        "folds": list(entry.folds),
        "dice": sum(f["dice"] for f in folds) / n,
        "dice_per_class": {c: sum(f["dice_per_class"][c] for f in folds) / n for c in classes},
        "params": sum(f["params"] for f in folds) / n,
        "params_range": [min(f["params"] for f in folds), max(f["params"] for f in folds)],
        "gflops": sum(f["gflops"] for f in folds) / n,
        "checkpoint_bytes": sum(f["checkpoint_bytes"] for f in folds) / n,
        "architecture": folds[0]["architecture"],
        "patch_size": folds[0]["patch_size"],
        "pruned": any(f["pruning_log"] for f in folds),
        "target_reached": None if not any(f["pruning_log"] for f in folds) else all(
            target_status(f["pruning_log"])["target_reached"] for f in folds if f["pruning_log"]),
    }


def _checkpoint_of(entry: ModelEntry) -> str:
    names = {f["checkpoint"] for f in entry.folds.values()}
    if len(names) > 1:
        raise PruningError(f"model {entry.label} has different checkpoints per fold ({', '.join(sorted(names))}); "
                           f"choose one with --checkpoint so every fold is timed alike")
    return names.pop()


def default_images_folder(dataset_name: str) -> str:
    """``$nnUNet_raw/<dataset>/imagesTs`` when it has images, else ``imagesTr``."""
    from nnunet_pruning.adapter.environment import require_path_variable

    raw = os.path.join(require_path_variable("nnUNet_raw"), dataset_name)
    for sub in ("imagesTs", "imagesTr"):
        folder = os.path.join(raw, sub)
        if os.path.isdir(folder) and os.listdir(folder):
            return folder
    raise PruningError(f"no imagesTs or imagesTr with images in {raw}; pass the images to time with --time FOLDER")


def _identity(folder: str, label: str) -> ModelEntry:
    """What a model folder's name and plans.json say it is (checked before its networks are measured)."""
    trainer, _, rest = os.path.basename(folder.rstrip(os.sep)).partition("__")
    plans_name, _, configuration = rest.partition("__")
    return ModelEntry(label=label, folder=folder, trainer=trainer, plans=plans_name, configuration=configuration,
                      dataset=_read_json(os.path.join(folder, "plans.json")).get("dataset_name", "?"))


def check_output_folder(output: str) -> None:
    """Refuse an output path that is a file, or that cannot be created, before anything is measured."""
    if os.path.exists(output) and not os.path.isdir(output):
        raise PruningError(f"output {output} is a file, not a folder; pass a folder with -o (it is created)")
    parent = os.path.dirname(os.path.abspath(output))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        raise PruningError(f"output {output} cannot be created ({parent} is not a writable folder); pass another "
                           f"folder with -o")


def available_folds(folders: list[str], labels: list[str], folds: list[str] | None,
                    checkpoint_name: str | None) -> list[str] | None:
    """The folds every model is measured on, checked before anything is measured.

    With ``folds`` every model must have each of them. Without, every model must have the same folds: a
    comparison of different fold sets would average Dice over different validation cases and time one
    network against an ensemble, so it is refused with the common folds to pass with ``-f``.
    """
    from nnunet_pruning.adapter.networks import model_folder_folds

    found = {label: [fold for fold, _ in model_folder_folds(folder, checkpoint_name)]
             for folder, label in zip(folders, labels)}
    if folds:
        for label, have in found.items():
            missing = [f for f in folds if f not in have]
            if missing:
                raise PruningError(f"model {label} has no checkpoint for fold {', '.join(missing)} (it has fold "
                                   f"{', '.join(have)}); train it or choose other folds with -f")
        return list(folds)
    sets = {tuple(have) for have in found.values()}
    if len(sets) > 1:
        listing = "; ".join(f"{label}: {' '.join(have)}" for label, have in found.items())
        common = [f for f in next(iter(found.values())) if all(f in have for have in found.values())]
        hint = f"pass the common folds with -f {' '.join(common)}" if common else \
            "the models share no fold: train the same folds first"
        raise PruningError(f"the models have different folds ({listing}); Dice and time would be averaged over "
                           f"different folds, {hint}")
    return None


def _fold_statuses(entries: list[ModelEntry]):
    """(entry, fold, pruning status) of every pruned fold (a fold without a pruning log is left out)."""
    for e in entries:
        for fold, f in e.folds.items():
            status = target_status(f.get("pruning_log"))
            if status:
                yield e, fold, status


def target_notes(entries: list[ModelEntry]) -> list[str]:
    """One report line per pruned fold that did not reach its pruning target (a schedule too short for it)."""
    return [f"**{e.label} fold {fold} did not reach its pruning target** ({describe_status(status)}): train longer, "
            f"or choose a schedule that fits (see nnunet-pruning trainers)."
            for e, fold, status in _fold_statuses(entries) if not status["target_reached"]]


def latency_notes(entries: list[ModelEntry]) -> list[str]:
    """One report line per pruned fold that measured its latency while training (the ``latency`` target)."""
    return [f"{e.label} fold {fold}: {describe_status(status)}."
            for e, fold, status in _fold_statuses(entries) if status.get("latency") is not None]


def checkpoint_notes(entries: list[ModelEntry]) -> list[str]:
    """One report line per model that is not measured from ``checkpoint_final.pth`` (training unfinished)."""
    notes = []
    for e in entries:
        names = sorted({f["checkpoint"] for f in e.folds.values()})
        if names != ["checkpoint_final.pth"]:
            notes.append(f"**{e.label} is measured from {', '.join(names)}, not checkpoint_final.pth** (training "
                         f"has not finished, or --checkpoint chose it): its Dice and size are not those of a "
                         f"finished model.")
    return notes


def run_compare(models: list[str], output: str, dataset: str | None = None, configuration: str | None = None,
                folds: list[str] | None = None, labels: list[str] | None = None, time_images: str | None = None,
                max_cases: int | None = None, settings=None, checkpoint_name: str | None = None,
                command: str = "nnunet-pruning compare",
                notes: list[str] | None = None, title: str = "nnunet_pruning comparison", preamble: str = "",
                progress=print, plans: str = "nnUNetPlans") -> dict:
    """Check every input, collect, optionally time, and write the comparison; returns ``{kind: path}``.

    ``time_images``: ``None`` (no timing), ``"auto"`` (the dataset's imagesTs, else imagesTr) or a folder.
    Every input (models, folds, output folder, images folder, timing settings) is checked before the first
    model is measured.
    """
    from nnunet_pruning.app.report import markdown_table, write_outputs

    if len(models) < 2:
        raise PruningError("compare needs at least two models: the baseline first (e.g. nnUNetTrainer), then the "
                           "models to compare with it")
    if labels and len(labels) != len(models):
        raise PruningError(f"{len(labels)} labels for {len(models)} models; give one label per model or none")
    check_output_folder(output)
    if time_images is not None:
        from nnunet_pruning.app.timing import TimingSettings

        settings = settings or TimingSettings()
        settings.validate()
        if max_cases is not None and max_cases < 1:
            raise PruningError(f"--max-cases must be >= 1, not {max_cases}")
        if time_images != "auto" and not os.path.isdir(time_images):
            raise PruningError(f"images folder {time_images} for --time does not exist; pass a folder of "
                               f"CASE_0000 images, or --time alone for the dataset's imagesTs")
        from nnunet_pruning.adapter.networks import check_predictor_finds

        for model in models:  # the predictor looks every trainer up through nnU-Net's own lookup
            check_predictor_finds(os.path.basename(model.rstrip(os.sep)).split("__")[0])
    folders = [resolve_model_folder(m, dataset, configuration, plans) for m in models]
    names = labels or [os.path.basename(f.rstrip(os.sep)).split("__")[0] for f in folders]
    folds = available_folds(folders, names, folds, checkpoint_name)
    if all(os.path.basename(f.rstrip(os.sep)).count("__") == 2 for f in folders):  # nnU-Net's folder names
        check_same_task([_identity(folder, name) for folder, name in zip(folders, names)], dataset, configuration)
    cases = images = None
    if time_images is not None:  # the images are checked before any model is measured
        from nnunet_pruning.app.timing import case_files

        dataset_json = _read_json(os.path.join(folders[0], "dataset.json"))
        dataset_name = _read_json(os.path.join(folders[0], "plans.json")).get("dataset_name", "?")
        images = default_images_folder(dataset_name) if time_images == "auto" else time_images
        cases = case_files(images, dataset_json, max_cases)
    entries = []
    for i, folder in enumerate(folders):
        progress(f"[compare] measuring model {i + 1}/{len(folders)}: {folder}")
        entries.append(collect_model(folder, folds, labels[i] if labels else None, checkpoint_name))
    check_same_task(entries, dataset, configuration)
    checkpoint_warnings = checkpoint_notes(entries) + target_notes(entries)
    for line in checkpoint_warnings:
        progress(f"[compare] WARNING: {line.replace('**', '')}")
    checkpoint_warnings += latency_notes(entries)
    seen = {}
    for e in entries:  # unique labels: they key the plots, CSV and timing
        seen[e.label] = seen.get(e.label, 0) + 1
        if seen[e.label] > 1:
            e.label = f"{e.label} #{seen[e.label]}"
    timing = None
    if time_images is not None:
        from nnunet_pruning.app.timing import time_models

        progress(f"[compare] timing {len(entries)} models on {len(cases)} cases of {images} "
                 f"({settings.warmup} warm-up + {settings.repeats} timed runs each)")
        timing = time_models([(e.label, e.folder, list(e.folds), _checkpoint_of(e)) for e in entries], cases,
                             settings, progress)
        timing["images"] = os.path.abspath(images)
        for e in entries:
            e.inference = timing["models"][e.label]
    with open(os.path.join(entries[0].folder, "dataset.json")) as f:
        label_names = {str(v): k for k, v in json.load(f)["labels"].items()}
    model_dicts = [e.as_dict() for e in entries]
    written = write_outputs(model_dicts, timing, output, label_names, command, checkpoint_warnings + list(notes or []),
                            title, preamble)
    progress(markdown_table(model_dicts, label_names))
    progress(f"[compare] wrote {written['report']}, results.csv, results.json and "
             f"{sum(k not in ('report', 'csv', 'json') for k in written)} plots in {os.path.abspath(output)}")
    return written
