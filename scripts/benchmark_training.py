#!/usr/bin/env python
"""Training cost of the pruning trainers against stock nnU-Net: seconds per iteration before and after
pruning, and the total time of the same epoch budget. Does scoring cost more than the shrinking network saves?

Each trainer is nnU-Net's own trainer class, built from one plans file and initialised as
``nnUNetv2_train`` does (network, SGD, poly LR, deep-supervision loss); each iteration is its own
``train_step`` on a synthetic batch of the plans' batch and patch size. The pruning trainers get their
Pruner attached exactly as in ``on_train_start`` (STAMP: Taylor-score and targeted-dropout hooks) and
prune after the epochs their schedule says. Data loading and validation are left out: they are the same
for every trainer. All trainers live in this one process, same threads, and take turns every ``--chunk``
iterations (the order rotating): each chunk's median against the first trainer's in the same turn is a paired
ratio, and their spread per epoch shows the machine's noise.

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
import statistics
import sys
import tempfile
import time

from nnunet_pruning.app.provenance import write_result

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


class TrainerRun:
    """One trainer, built and initialised as ``nnUNetv2_train`` does, its Pruner attached as ``on_train_start``
    does; :meth:`iterations` runs its ``train_step`` on one synthetic batch; :meth:`end_epoch` prunes where its
    schedule says."""

    def __init__(self, name: str, plans: dict, dataset_json: dict, configuration: str, epochs: int | None,
                 iterations: int | None):
        from nnunet_pruning.trainers.batches import synthetic_batch

        self.name = name
        self.trainer = initialised_trainer(name, plans, dataset_json, configuration, epochs, iterations)
        self.pruner = self.trainer.make_pruner() if hasattr(self.trainer, "make_pruner") else None
        if self.pruner is not None:
            self.pruner.attach()
        self.batch = synthetic_batch(self.trainer)
        self.trainer.network.train()
        self.seconds: list[float] = []  # this epoch's iterations
        self.total_s = 0.0
        self.result = {"trainer": name, "epochs": self.trainer.num_epochs,
                       "iterations_per_epoch": self.trainer.num_iterations_per_epoch,
                       "batch_size": self.trainer.configuration_manager.batch_size,
                       "patch_size": list(self.trainer.configuration_manager.patch_size), "per_epoch": []}

    def iterations(self, epoch: int, count: int) -> float:
        """``count`` iterations of ``epoch``; returns their median seconds."""
        self.trainer.lr_scheduler.step(epoch)
        chunk = []
        for _ in range(count):
            t = time.perf_counter()
            self.trainer.train_step(self.batch)
            chunk.append(time.perf_counter() - t)
        self.seconds += chunk
        self.total_s += sum(chunk)
        return statistics.median(chunk)

    def end_epoch(self, epoch: int, other_cores: float | None) -> dict:
        record = {"epoch": epoch, "median_s_per_iteration": statistics.median(self.seconds),
                  "train_s": sum(self.seconds), "params": sum(p.numel() for p in self.trainer.network.parameters()),
                  "other_cpu_cores": other_cores}
        self.seconds = []
        if self.pruner is not None:
            t = time.perf_counter()
            step = self.pruner.maybe_step(epoch, self.trainer.optimizer)
            record["pruning_step_s"] = time.perf_counter() - t if step is not None else 0.0
            self.total_s += record["pruning_step_s"]
        self.result["per_epoch"].append(record)
        return record

    def finish(self) -> dict:
        if self.pruner is not None:
            self.pruner.detach()
        r = self.result
        r["total_s"] = self.total_s
        r["s_per_iteration_first_epoch"] = r["per_epoch"][0]["median_s_per_iteration"]
        r["s_per_iteration_last_epoch"] = r["per_epoch"][-1]["median_s_per_iteration"]
        return r


def run_interleaved(runs: list[TrainerRun], chunk: int) -> None:
    """Every epoch in chunks of ``chunk`` iterations, the trainers taking turns chunk by chunk (the order rotating),
    so that a change of the machine's load hits all alike; per epoch and trainer, the ratio of each chunk's median
    to the first trainer's in the same round (``chunk_ratios``: paired, so their spread is the noise)."""
    from nnunet_pruning.app.machine import OtherCpuLoad

    epochs, iterations = runs[0].result["epochs"], runs[0].result["iterations_per_epoch"]
    for run in runs:
        if (run.result["epochs"], run.result["iterations_per_epoch"]) != (epochs, iterations):
            raise ValueError(f"{run.name} trains {run.result['epochs']} x {run.result['iterations_per_epoch']}, "
                             f"{runs[0].name} {epochs} x {iterations}: give --epochs and --iterations")
    for epoch in range(epochs):
        ratios: dict[str, list[float]] = {run.name: [] for run in runs}
        with OtherCpuLoad() as load:
            for k, start in enumerate(range(0, iterations, chunk)):
                count = min(chunk, iterations - start)
                order = runs[k % len(runs):] + runs[:k % len(runs)]
                medians = {run.name: run.iterations(epoch, count) for run in order}
                for run in runs:
                    ratios[run.name].append(medians[run.name] / medians[runs[0].name])
        for run in runs:
            record = run.end_epoch(epoch, load.cores)
            record["chunk_ratios"] = [round(r, 4) for r in ratios[run.name]]
            spread = f"{min(ratios[run.name]):.2f}-{max(ratios[run.name]):.2f}x"
            print(f"[benchmark] {run.name} epoch {epoch}: {record['median_s_per_iteration']:.3f} s/iteration "
                  f"(median of {iterations}; paired per chunk vs {runs[0].name}: {spread}), {record['params']:,} "
                  f"params" + (f", pruning step {record['pruning_step_s']:.2f} s" if record.get("pruning_step_s")
                               else ""), flush=True)
        if load.warning():
            print(f"[benchmark] {load.warning(f'epoch {epoch}')}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", required=True, help="a plans .json (dataset.json beside it)")
    parser.add_argument("-c", "--configuration", default="3d_fullres")
    parser.add_argument("--trainers", nargs="+", default=DEFAULT_TRAINERS, help="the first is the reference")
    parser.add_argument("--epochs", type=int, help="override every trainer's epoch count")
    parser.add_argument("--iterations", type=int, help="override every trainer's iterations per epoch")
    parser.add_argument("--chunk", type=int, default=5, help="iterations per turn: the trainers take turns")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    with nnunet_folders(args.plans):
        import torch

        from nnunet_pruning.core.errors import PruningError

        torch.set_num_threads(args.threads)
        try:
            plans, dataset_json = read_plans(args.plans)
            trainer_runs = [TrainerRun(t, plans, dataset_json, args.configuration, args.epochs, args.iterations)
                            for t in args.trainers]
            run_interleaved(trainer_runs, args.chunk)
            runs = [run.finish() for run in trainer_runs]
        except (PruningError, OSError, ValueError) as e:
            print(f"benchmark_training: error: {e}", file=sys.stderr)
            return 2
    reference = runs[0]
    for r in runs:
        r["first_epoch_vs_reference"] = r["s_per_iteration_first_epoch"] / reference["s_per_iteration_first_epoch"]
        r["last_epoch_vs_reference"] = r["s_per_iteration_last_epoch"] / reference["s_per_iteration_last_epoch"]
        r["total_vs_reference"] = r["total_s"] / reference["total_s"]
    print(f"\n{args.threads} CPU threads, batch {reference['batch_size']}, patch "
          f"{'x'.join(map(str, reference['patch_size']))}; time relative to {reference['trainer']}")
    header = f"{'trainer':<36} {'s/it first epoch (paired range)':>32} {'s/it last epoch (paired range)':>32} " \
             f"{'params last':>12} {'total s':>8} {'total vs ref':>12}"
    print(header + "\n" + "-" * len(header))

    def cell(seconds: float, ratio: float, chunks: list[float]) -> str:
        return f"{seconds:.3f} ({ratio:.2f}x, {min(chunks):.2f}-{max(chunks):.2f})"
    for r in runs:
        first, last = r["per_epoch"][0], r["per_epoch"][-1]
        print(f"{r['trainer']:<36} "
              f"{cell(r['s_per_iteration_first_epoch'], r['first_epoch_vs_reference'], first['chunk_ratios']):>32} "
              f"{cell(r['s_per_iteration_last_epoch'], r['last_epoch_vs_reference'], last['chunk_ratios']):>32} "
              f"{last['params']:>12,} {r['total_s']:>8.1f} {r['total_vs_reference']:>11.2f}x")
    from nnunet_pruning.app.machine import BUSY_CORES

    busy = [f"{r['trainer']} epoch {e['epoch']}" for r in runs for e in r["per_epoch"]
            if (e["other_cpu_cores"] or 0) > BUSY_CORES]
    if busy:
        print(f"warning: other processes were busy during {', '.join(busy)}: those figures are suspect (see "
              f"other_cpu_cores in the JSON); rerun on an idle machine")
    write_result({"plans": os.path.abspath(args.plans), "configuration": args.configuration,
                  "threads": args.threads, "runs": runs}, args.json, __file__, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
