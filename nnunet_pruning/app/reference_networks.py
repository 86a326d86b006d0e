"""The networks the benchmark scripts compare, built from one plans file: stock nnU-Net, stock with oneDNN
convolutions, the Flat U-Net, random-largest pruned to a share of the parameters or of the measured forward time
(the trainers' own pruner, without training), and trained model folders; and plans with another patch or depth.

Used by ``scripts/benchmark_inference.py`` and ``scripts/benchmark_gpu.py``; timed by
:func:`nnunet_pruning.app.timing.time_networks`.
"""

from __future__ import annotations

import copy
import json
import os
import time
from typing import Callable

from torch import nn

from nnunet_pruning.adapter.checkpoints import load_checkpoint_file
from nnunet_pruning.adapter.networks import build_from_checkpoint, build_network, load_plans, model_folder_folds, \
    resolve_trainer
from nnunet_pruning.core.latency import LatencyDevice, LatencyModel, build_latency_table
from nnunet_pruning.core.onednn import use_onednn_convolutions
from nnunet_pruning.core.pruner import Pruner
from nnunet_pruning.core.runtime_forward import use_runtime
from nnunet_pruning.core.schedule import PruningSchedule

__all__ = ["LATENCY_REFERENCE", "build_networks", "prune_to_latency", "override_plans"]

#: the unpruned network a latency target is relative to: as the pruning trainers build it (core/onednn.py)
LATENCY_REFERENCE = "stock nnU-Net, oneDNN convolutions"


def _say(line: str) -> None:
    print(f"[benchmark] {line}", flush=True)


def build_networks(plans_file: str, configuration: str, keep: float, model_folders: list[str],
                   latency_keep: float | None = None, threads: int = 2, minimal: bool = False,
                   latency_device: LatencyDevice | None = None, max_latency_steps: int = 20,
                   log: Callable[[str], None] = _say, keep_pruning: Callable[[], bool] = lambda: True,
                   ) -> tuple[dict, dict]:
    """``({name: network}, {name: latency target record})``: stock, Flat, random-largest pruned to ``keep`` of
    the parameters, random-largest pruned to ``latency_keep`` of the forward time measured on ``latency_device``
    (default: this CPU with ``threads`` threads; :func:`prune_to_latency`), and any trained model folders."""
    plans_manager, cm, dataset_json = load_plans(plans_file, configuration)
    networks, targets = {}, {}
    baselines = (("stock nnU-Net", "nnUNetTrainer"),) + (() if minimal else (("Flat U-Net", "nnUNetTrainerFlatUNet"),))
    for name, trainer in baselines:
        networks[name] = build_network(resolve_trainer(trainer), plans_manager, cm, dataset_json)
    if not minimal:
        stock = copy.deepcopy(networks[baselines[0][0]])
        networks[LATENCY_REFERENCE] = use_onednn_convolutions(stock)
    channels = len(dataset_json["channel_names"])
    shape = (channels, *cm.patch_size)
    if not minimal:
        pruned = build_network(resolve_trainer("nnUNetTrainerRandomLargest"), plans_manager, cm, dataset_json)
        pruner = Pruner(pruned, PruningSchedule(method="random_largest", keep_fraction=keep, step_fraction=0.5),
                        shape)
        while not pruner.finished:
            pruner.step(0)
        networks[f"random-largest (keep {keep:.0%} params)"] = pruned
    if latency_keep is not None:
        name = f"random-largest (keep {latency_keep:.0%} latency)"
        networks[name], targets[name] = prune_to_latency(plans_manager, cm, dataset_json, latency_keep,
                                                         latency_device or LatencyDevice("cpu", threads),
                                                         max_latency_steps, log, keep_pruning)
    for folder in model_folders:
        fold, path = model_folder_folds(folder)[0]
        checkpoint = load_checkpoint_file(path)
        network, _ = build_from_checkpoint(folder, checkpoint)
        name = f"{checkpoint['trainer_name']} fold {fold}"
        if name in networks:  # the same trainer from another results folder
            name += f" ({os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(folder))))})"
        networks[name] = network
    for network in networks.values():  # PyTorch, whatever nnUNet_pruning_backend says: these benchmarks compare
        use_runtime(network, "torch")  # networks (the backends: python -m scripts backends)
    return networks, targets


def prune_to_latency(plans_manager, configuration_manager, dataset_json: dict, keep_fraction: float,
                     where: LatencyDevice, max_steps: int = 20, log: Callable[[str], None] = _say,
                     keep_pruning: Callable[[], bool] = lambda: True) -> tuple[nn.Module, dict]:
    """``(network on the CPU, record)``: the network ``nnUNetTrainerRandomLargestLatency`` builds, pruned by its
    pruner (without training) to ``keep_fraction`` of the forward time measured on ``where``: at most
    ``max_steps`` steps, fewer when the pruner finishes (also when no cut measures faster) or ``keep_pruning()``
    says no. The record has the table's and each step's times and whether the target was reached."""
    network = build_network(resolve_trainer("nnUNetTrainerRandomLargestLatency"), plans_manager,
                            configuration_manager, dataset_json)
    shape = (len(dataset_json["channel_names"]), *configuration_manager.patch_size)
    log(f"measuring the latency table on {where.describe()} at patch "
        f"{'x'.join(map(str, configuration_manager.patch_size))}")
    table = build_latency_table(network, shape, where, progress=log)
    pruner = Pruner(network, PruningSchedule(method="random_largest", target_metric="latency",
                                             keep_fraction=keep_fraction, step_fraction=0.25,
                                             latency_device=where.device),
                    shape, latency=LatencyModel(table, where, shape, reference=copy.deepcopy(network)))
    steps = []
    for step in range(max_steps):
        started = time.perf_counter()
        record = pruner.step(step)
        steps.append({"seconds": time.perf_counter() - started, "latency_s": record["latency"],
                      "latency_fraction": record["latency_fraction"], "params": record.get("params")})
        log(f"latency pruning step {step + 1}: {record['latency'] * 1e3:.2f} ms = {record['latency_fraction']:.1%} "
            f"of {table.base_seconds * 1e3:.2f} ms, step took {steps[-1]['seconds']:.1f} s")
        if pruner.finished:
            break
        if not keep_pruning():
            log("latency pruning stopped before its target: the time allowed for it is spent")
            break
    return network.cpu(), {"keep_fraction": keep_fraction, "device": where.describe(),
                           "unpruned_seconds": table.base_seconds, "table_seconds": table.build_seconds,
                           "pruned_seconds_at_pruning": pruner.log[-1]["latency"] if pruner.log else None,
                           "steps": steps, "pruner_finished": pruner.finished,
                           "target_reached": pruner.target_reached}


def override_plans(plans_file: str, configuration: str, patch: list[int] | None, stages: int | None,
                   folder: str, max_width: int | None = None) -> str:
    """A copy of the plans (and dataset.json) with another patch size and/or number of stages (stride 2 on
    every axis after the first stage, widths doubling from the first stage's up to its cap); returns its path."""
    with open(plans_file) as f:
        plans = json.load(f)
    config = plans["configurations"][configuration]
    arch = config["architecture"]["arch_kwargs"]
    if patch:
        config["patch_size"] = list(patch)
    if stages:
        base, cap = arch["features_per_stage"][0], max_width or max(arch["features_per_stage"])
        dim = len(config["patch_size"])
        arch.update(n_stages=stages, features_per_stage=[min(cap, base * 2 ** i) for i in range(stages)],
                    kernel_sizes=[[3] * dim] * stages, strides=[[1] * dim] + [[2] * dim] * (stages - 1),
                    n_conv_per_stage=[2] * stages, n_conv_per_stage_decoder=[2] * (stages - 1))
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "plans.json")
    with open(path, "w") as f:
        json.dump(plans, f, indent=1)
    with open(os.path.join(os.path.dirname(plans_file), "dataset.json")) as src, \
            open(os.path.join(folder, "dataset.json"), "w") as dst:
        dst.write(src.read())
    return path
