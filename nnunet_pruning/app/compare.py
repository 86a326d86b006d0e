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
from nnunet_pruning.core.errors import PruningError

__all__ = ["ModelEntry", "resolve_model_folder", "collect_model", "check_same_task", "summarise",
           "default_images_folder", "run_compare"]


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


def resolve_model_folder(model: str, dataset: str | None, configuration: str | None) -> str:
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
    name = model if "__" in model else f"{model}__nnUNetPlans"
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
        log_path = os.path.join(fold_dir, "pruning_log.json")
        measured["pruning_log"] = _read_json(log_path) if os.path.isfile(log_path) else None
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


def run_compare(models: list[str], output: str, dataset: str | None = None, configuration: str | None = None,
                folds: list[str] | None = None, labels: list[str] | None = None, time_images: str | None = None,
                max_cases: int | None = None, settings=None, checkpoint_name: str | None = None,
                command: str = "nnunet-pruning compare",
                notes: list[str] | None = None, title: str = "nnunet_pruning comparison", preamble: str = "",
                progress=print) -> dict:
    """Collect, check, optionally time, and write the comparison; returns ``{kind: path}`` of the outputs.

    ``time_images``: ``None`` (no timing), ``"auto"`` (the dataset's imagesTs, else imagesTr) or a folder.
    """
    from nnunet_pruning.app.report import markdown_table, write_outputs

    if len(models) < 2:
        raise PruningError("compare needs at least two models: the baseline first (e.g. nnUNetTrainer), then the "
                           "models to compare with it")
    if labels and len(labels) != len(models):
        raise PruningError(f"{len(labels)} labels for {len(models)} models; give one label per model or none")
    folders = [resolve_model_folder(m, dataset, configuration) for m in models]
    entries = []
    for i, folder in enumerate(folders):
        progress(f"[compare] measuring model {i + 1}/{len(folders)}: {folder}")
        entries.append(collect_model(folder, folds, labels[i] if labels else None, checkpoint_name))
    check_same_task(entries, dataset, configuration)
    seen = {}
    for e in entries:  # unique labels: they key the plots, CSV and timing
        seen[e.label] = seen.get(e.label, 0) + 1
        if seen[e.label] > 1:
            e.label = f"{e.label} #{seen[e.label]}"
    timing = None
    if time_images is not None:
        from nnunet_pruning.app.timing import TimingSettings, case_files, time_models

        settings = settings or TimingSettings()
        with open(os.path.join(entries[0].folder, "dataset.json")) as f:
            dataset_json = json.load(f)
        folder = default_images_folder(entries[0].dataset) if time_images == "auto" else time_images
        cases = case_files(folder, dataset_json, max_cases)
        progress(f"[compare] timing {len(entries)} models on {len(cases)} cases of {folder} "
                 f"({settings.warmup} warm-up + {settings.repeats} timed runs each)")
        timing = time_models([(e.label, e.folder, list(e.folds), _checkpoint_of(e)) for e in entries], cases,
                             settings, progress)
        timing["images"] = os.path.abspath(folder)
        for e in entries:
            e.inference = timing["models"][e.label]
    with open(os.path.join(entries[0].folder, "dataset.json")) as f:
        label_names = {str(v): k for k, v in json.load(f)["labels"].items()}
    model_dicts = [e.as_dict() for e in entries]
    written = write_outputs(model_dicts, timing, output, label_names, command, notes, title, preamble)
    progress(markdown_table(model_dicts, label_names))
    progress(f"[compare] wrote {written['report']}, results.csv, results.json and "
             f"{sum(k not in ('report', 'csv', 'json') for k in written)} plots in {os.path.abspath(output)}")
    return written
