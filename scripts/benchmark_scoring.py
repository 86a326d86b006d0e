#!/usr/bin/env python
"""What STAMP's Taylor scoring costs per training iteration: scores read off parameter gradients against
hooks on every activation, and no scoring at all, on one network, interleaved.

One trainer (nnU-Net's own class, initialised as ``nnUNetv2_train`` does: network, SGD, deep-supervision loss,
AMP and its GradScaler on CUDA) runs its ``train_step`` on one synthetic batch of the plans' batch and patch
size, the network unchanged (no pruning step), with

* ``no scoring``: no hooks (a stock iteration; random-largest's while it prunes);
* ``targeted dropout only``: STAMP's channel dropout without scores (what the scores add is the difference);
* ``STAMP, activation hooks``: Taylor scores from hooks on every activation (as before scores came from
  parameter gradients);
* ``STAMP, parameter gradients``: Taylor scores from the norms' affine gradients (the trainers' default);

both STAMP variants with targeted dropout on, as STAMP trains. With ``--compile`` the hook-free variants also
run ``torch.compile``-d (activation hooks cannot be). Rounds interleave the variants (2 warm-up iterations each
time a variant starts); figures are medians over every timed iteration, with the CPU load of other processes.

    python -m scripts scoring --plans demo_output/nnUNet_preprocessed/Dataset900_SyntheticShapes/nnUNetPlans.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

if __package__ in (None, ""):  # run as python scripts/benchmark_scoring.py: its sibling modules import as scripts.*
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nnunet_pruning.app.provenance import write_result  # noqa: E402
from scripts.benchmark_training import initialised_trainer, nnunet_folders, read_plans  # noqa: E402

VARIANTS = ("no scoring", "targeted dropout only", "STAMP, activation hooks", "STAMP, parameter gradients")
COMPILED = " [compiled]"


def _attach(pruner, variant: str) -> None:
    pruner.detach()
    if variant.startswith("STAMP"):
        pruner.scorer.from_parameters = "parameter" in variant
        pruner.attach()
    elif "dropout" in variant:
        pruner.dropout.attach()


def run(trainer, variants: list[str], rounds: int, iterations: int, warmup: int = 2) -> dict:
    """Per variant: the seconds of every timed iteration and the other processes' CPU load."""
    import torch

    from nnunet_pruning.app.machine import OtherCpuLoad
    from nnunet_pruning.trainers.batches import synthetic_batch

    pruner = trainer.make_pruner()
    trainer.score_with_loss_scale(pruner)  # as the trainer's on_train_start does
    module = trainer.network
    compiled = torch.compile(module) if any(v.endswith(COMPILED) for v in variants) else None
    batch = synthetic_batch(trainer)
    module.train()
    seconds = {v: [] for v in variants}
    load = {v: [] for v in variants}
    for r in range(rounds):
        for variant in variants:
            _attach(pruner, variant.removesuffix(COMPILED))
            trainer.network = compiled if variant.endswith(COMPILED) else module
            for _ in range(warmup):
                trainer.train_step(batch)  # (returns the loss on the host: every step ends synchronised)
            with OtherCpuLoad() as other:
                for _ in range(iterations):
                    started = time.perf_counter()
                    trainer.train_step(batch)
                    seconds[variant].append(time.perf_counter() - started)
            load[variant].append(other.cores)
            print(f"[scoring] round {r + 1}/{rounds} {variant}: "
                  f"{statistics.median(seconds[variant][-iterations:]) * 1e3:.1f} ms/iteration", flush=True)
    pruner.detach()
    trainer.network = module
    return {"seconds": seconds, "other_cpu_cores": load}


def round_ratios(seconds: dict[str, list[float]], iterations: int) -> dict[str, list[float]]:
    """Per variant, each round's median over its round of ``no scoring`` (paired by round: what drifts between
    rounds, such as other load or the training itself, cancels; their spread shows the noise)."""
    def rounds(values):
        return [statistics.median(values[i:i + iterations]) for i in range(0, len(values), iterations)]

    reference = rounds(seconds["no scoring"])
    return {v: [m / r for m, r in zip(rounds(s), reference)] for v, s in seconds.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", required=True, help="a plans .json (dataset.json beside it)")
    parser.add_argument("-c", "--configuration", default="3d_fullres")
    parser.add_argument("--trainer", default="nnUNetTrainerSTAMP_demo", help="a STAMP trainer (its schedule)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--compile", action="store_true", help="also time the hook-free variants compiled")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations per variant and round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    variants = list(VARIANTS) + ([v + COMPILED for v in VARIANTS if "activation" not in v] if args.compile else [])
    with nnunet_folders(args.plans):
        import torch

        from nnunet_pruning.core.errors import PruningError

        torch.set_num_threads(args.threads)
        try:
            plans, dataset_json = read_plans(args.plans)
            trainer = initialised_trainer(args.trainer, plans, dataset_json, args.configuration, device=args.device)
            if not hasattr(trainer, "make_pruner") or trainer.pruning_schedule.method == "random_largest":
                raise PruningError(f"{args.trainer} does not score channels; name a STAMP trainer")
            measured = run(trainer, variants, args.rounds, args.iterations)
        except (PruningError, OSError) as e:
            print(f"benchmark_scoring: error: {e}", file=sys.stderr)
            return 2
    medians = {v: statistics.median(s) for v, s in measured["seconds"].items()}
    ratios = round_ratios(measured["seconds"], args.iterations)
    device = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {args.threads} threads"
    print(f"\n{device}, batch {trainer.configuration_manager.batch_size}, patch "
          f"{'x'.join(map(str, trainer.configuration_manager.patch_size))}, {args.rounds} rounds x "
          f"{args.iterations} iterations per variant (median)")
    for variant, median in medians.items():
        print(f"  {variant:<42} {median * 1e3:8.1f} ms/iteration  {median / medians['no scoring']:.2f}x no scoring "
              f"(per round {min(ratios[variant]):.2f}-{max(ratios[variant]):.2f}x)")
    from nnunet_pruning.app.machine import BUSY_CORES

    busy = [v for v, cores in measured["other_cpu_cores"].items() if max(c or 0 for c in cores) > BUSY_CORES]
    if busy:
        print(f"warning: other processes kept CPU cores busy during {', '.join(busy)}: those figures are suspect")
    write_result({"device": device, "trainer": args.trainer, "batch_size": trainer.configuration_manager.batch_size,
                   "patch_size": list(trainer.configuration_manager.patch_size),
                   "median_s_per_iteration": medians,
                   "vs_no_scoring": {v: m / medians["no scoring"] for v, m in medians.items()},
                   "round_ratios_vs_no_scoring": ratios,
                  **measured}, args.json, __file__, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
