#!/usr/bin/env python
"""Training cost of the pruning trainers against stock nnU-Net: seconds per iteration before and after
pruning, and the total time of the same epoch budget. Does scoring cost more than the shrinking network saves?

Each trainer is nnU-Net's own trainer class, built from one plans file and initialised as
``nnUNetv2_train`` does (network, SGD, poly LR, deep-supervision loss); each iteration is its own
``train_step`` on a synthetic batch of the plans' batch and patch size. The pruning trainers get their
Pruner attached exactly as in ``on_train_start`` (STAMP: Taylor-score and targeted-dropout hooks) and
prune after the epochs their schedule says. Data loading and validation are left out: they are the same
for every trainer. All trainers run in this one process, one after the other, same threads.

    python scripts/benchmark_training.py \\
        --plans demo_output/nnUNet_preprocessed/Dataset900_SyntheticShapes/nnUNetPlans.json --json training.json

The default trainers are the demo's (5 epochs x 20 iterations, pruning after epochs 0-2).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time

DEFAULT_TRAINERS = ["nnUNetTrainerStock_demo", "nnUNetTrainerRandomLargest_demo", "nnUNetTrainerSTAMP_demo"]


@contextlib.contextmanager
def nnunet_folders(plans_path: str):
    """nnU-Net's folders for trainers built from ``plans_path``: its preprocessed folder (initialize() reads the
    plans there), and a scratch results folder (trainers write logs into it)."""
    from nnunet_pruning.adapter.environment import environment_set

    preprocessed = os.path.dirname(os.path.dirname(os.path.abspath(plans_path)))
    with tempfile.TemporaryDirectory() as scratch, \
            environment_set({"nnUNet_results": scratch, "nnUNet_preprocessed": preprocessed}):
        yield


def read_plans(plans_path: str) -> tuple[dict, dict]:
    """The plans and the dataset.json beside them."""
    with open(plans_path) as f:
        plans = json.load(f)
    with open(os.path.join(os.path.dirname(os.path.abspath(plans_path)), "dataset.json")) as f:
        return plans, json.load(f)


def initialised_trainer(name: str, plans: dict, dataset_json: dict, configuration: str, epochs: int | None = None,
                        iterations: int | None = None, device: str = "cpu"):
    """Trainer ``name`` (a class name) on fold 0, initialised as nnUNetv2_train does it (quietly)."""
    import torch

    from nnunet_pruning.adapter.networks import resolve_trainer

    cls = resolve_trainer(name)
    with contextlib.redirect_stdout(io.StringIO()):
        trainer = cls(dict(plans, continue_training=False), configuration, 0, dataset_json, torch.device(device))
        trainer.num_epochs = epochs or trainer.num_epochs  # before initialize(): the poly LR schedule uses it
        trainer.num_iterations_per_epoch = iterations or trainer.num_iterations_per_epoch
        trainer.initialize()
    return trainer


def run_trainer(name: str, plans: dict, dataset_json: dict, configuration: str, epochs: int | None,
                iterations: int | None) -> dict:
    from nnunet_pruning.app.machine import OtherCpuLoad
    from nnunet_pruning.trainers.batches import synthetic_batch

    trainer = initialised_trainer(name, plans, dataset_json, configuration, epochs, iterations)
    epochs, iterations = trainer.num_epochs, trainer.num_iterations_per_epoch
    pruner = trainer.make_pruner() if hasattr(trainer, "make_pruner") else None  # as on_train_start does
    if pruner is not None:
        pruner.attach()
    batch = synthetic_batch(trainer)
    trainer.network.train()
    result = {"trainer": name, "epochs": epochs, "iterations_per_epoch": iterations,
              "batch_size": trainer.configuration_manager.batch_size,
              "patch_size": list(trainer.configuration_manager.patch_size), "per_epoch": []}
    started = time.perf_counter()
    for epoch in range(epochs):
        trainer.lr_scheduler.step(epoch)
        seconds = []
        with OtherCpuLoad() as load:
            for _ in range(iterations):
                t = time.perf_counter()
                trainer.train_step(batch)
                seconds.append(time.perf_counter() - t)
        record = {"epoch": epoch, "median_s_per_iteration": statistics.median(seconds), "train_s": sum(seconds),
                  "params": sum(p.numel() for p in trainer.network.parameters()), "other_cpu_cores": load.cores}
        if pruner is not None:
            t = time.perf_counter()
            step = pruner.maybe_step(epoch, trainer.optimizer)
            record["pruning_step_s"] = time.perf_counter() - t if step is not None else 0.0
        result["per_epoch"].append(record)
        print(f"[benchmark] {name} epoch {epoch}: {record['median_s_per_iteration']:.3f} s/iteration (median of "
              f"{iterations}), {record['params']:,} params"
              + (f", pruning step {record['pruning_step_s']:.2f} s" if record.get("pruning_step_s") else ""),
              flush=True)
        if load.warning():
            print(f"[benchmark] {load.warning(f'{name} epoch {epoch}')}", flush=True)
    result["total_s"] = time.perf_counter() - started
    if pruner is not None:
        pruner.detach()
    result["s_per_iteration_first_epoch"] = result["per_epoch"][0]["median_s_per_iteration"]
    result["s_per_iteration_last_epoch"] = result["per_epoch"][-1]["median_s_per_iteration"]
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", required=True, help="a plans .json (dataset.json beside it)")
    parser.add_argument("-c", "--configuration", default="3d_fullres")
    parser.add_argument("--trainers", nargs="+", default=DEFAULT_TRAINERS, help="the first is the reference")
    parser.add_argument("--epochs", type=int, help="override every trainer's epoch count")
    parser.add_argument("--iterations", type=int, help="override every trainer's iterations per epoch")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    with nnunet_folders(args.plans):
        import torch

        from nnunet_pruning.core.errors import PruningError

        torch.set_num_threads(args.threads)
        try:
            plans, dataset_json = read_plans(args.plans)
            runs = [run_trainer(t, plans, dataset_json, args.configuration, args.epochs, args.iterations)
                    for t in args.trainers]
        except (PruningError, OSError) as e:
            print(f"benchmark_training: error: {e}", file=sys.stderr)
            return 2
    reference = runs[0]
    for r in runs:
        r["first_epoch_vs_reference"] = r["s_per_iteration_first_epoch"] / reference["s_per_iteration_first_epoch"]
        r["last_epoch_vs_reference"] = r["s_per_iteration_last_epoch"] / reference["s_per_iteration_last_epoch"]
        r["total_vs_reference"] = r["total_s"] / reference["total_s"]
    print(f"\n{args.threads} CPU threads, batch {reference['batch_size']}, patch "
          f"{'x'.join(map(str, reference['patch_size']))}; time relative to {reference['trainer']}")
    header = f"{'trainer':<36} {'s/it first epoch':>16} {'s/it last epoch':>16} {'params last':>12} " \
             f"{'total s':>8} {'total vs ref':>12}"
    print(header + "\n" + "-" * len(header))
    for r in runs:
        print(f"{r['trainer']:<36} {r['s_per_iteration_first_epoch']:>9.3f} ({r['first_epoch_vs_reference']:.2f}x) "
              f"{r['s_per_iteration_last_epoch']:>9.3f} ({r['last_epoch_vs_reference']:.2f}x) "
              f"{r['per_epoch'][-1]['params']:>12,} {r['total_s']:>8.1f} {r['total_vs_reference']:>11.2f}x")
    from nnunet_pruning.app.machine import BUSY_CORES

    busy = [f"{r['trainer']} epoch {e['epoch']}" for r in runs for e in r["per_epoch"]
            if (e["other_cpu_cores"] or 0) > BUSY_CORES]
    if busy:
        print(f"warning: other processes were busy during {', '.join(busy)}: those figures are suspect (see "
              f"other_cpu_cores in the JSON); rerun on an idle machine")
    if args.json:
        import torch

        with open(args.json, "w") as f:
            json.dump({"plans": os.path.abspath(args.plans), "configuration": args.configuration,
                       "threads": args.threads, "torch": torch.__version__, "platform": platform.platform(),
                       "cpu_count": os.cpu_count(), "runs": runs}, f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
