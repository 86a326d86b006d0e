"""``count``: measure the network a plans file would train, or the networks a model folder holds."""

from __future__ import annotations

import os

from nnunet_pruning.core.measure import GFLOPS_UNIT, file_bytes, measure_network
from nnunet_pruning.adapter.checkpoints import load_checkpoint_file
from nnunet_pruning.adapter.pruning_logs import describe_status, read_pruning_log, target_status
from nnunet_pruning.adapter.networks import build_from_checkpoint, build_from_plans, model_folder_folds

__all__ = ["count_plans", "count_model_folder", "format_count"]


def count_plans(plans_file: str, configuration: str, trainer_name: str = "nnUNetTrainer",
                dataset_json_file: str | None = None) -> dict:
    """Measurements of the network ``trainer_name`` builds from a plans file (deep supervision off)."""
    network, patch_size = build_from_plans(plans_file, configuration, trainer_name, dataset_json_file)
    result = {"source": os.path.abspath(plans_file), "configuration": configuration, "trainer": trainer_name,
              "gflops_unit": GFLOPS_UNIT, "networks": {}}
    result["networks"]["plans"] = measure_network(network, patch_size)
    return result


def count_model_folder(model_folder: str, checkpoint_name: str | None = None, folds: list[str] | None = None) -> dict:
    """Measurements of every fold's (or only ``folds``') trained network, plus each checkpoint's size."""
    result = {"source": os.path.abspath(model_folder), "gflops_unit": GFLOPS_UNIT, "networks": {}}
    for fold, path in model_folder_folds(model_folder, checkpoint_name):
        if folds and fold not in folds:
            continue
        checkpoint = load_checkpoint_file(path)
        network, patch_size = build_from_checkpoint(model_folder, checkpoint)
        result["configuration"] = checkpoint["init_args"]["configuration"]
        result["trainer"] = checkpoint["trainer_name"]
        result["networks"][f"fold_{fold}"] = dict(
            measure_network(network, patch_size), checkpoint=os.path.basename(path), checkpoint_bytes=file_bytes(path),
            pruning=target_status(read_pruning_log(os.path.dirname(path))))
    return result


def format_count(result: dict) -> str:
    """A human-readable table of a :func:`count_plans` / :func:`count_model_folder` result."""
    lines = [f"source: {result['source']}", f"trainer: {result.get('trainer')}  "
             f"configuration: {result.get('configuration')}", f"unit: {result['gflops_unit']}", ""]
    header = f"{'network':<10} {'architecture':<20} {'params':>12} {'GFLOPs':>10} {'checkpoint MB':>14}  patch"
    lines += [header, "-" * len(header)]
    for name, n in result["networks"].items():
        size = f"{n['checkpoint_bytes'] / 1e6:.2f}" if "checkpoint_bytes" in n else "-"
        lines.append(f"{name:<10} {n['architecture']:<20} {n['params']:>12,} {n['gflops']:>10.3f} {size:>14}  "
                     f"{'x'.join(map(str, n['patch_size']))}")
    for name, n in result["networks"].items():
        if n.get("pruning"):
            lines.append(f"pruning of {name}: {describe_status(n['pruning'])}")
    for name, n in result["networks"].items():
        lines += ["", f"conv widths of {name} (output channels per conv, by stage):"]
        lines += [f"  {stage:<24} {widths}" for stage, widths in n["widths"].items()]
    return "\n".join(lines)
