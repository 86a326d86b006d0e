#!/usr/bin/env python
"""One GPU run: eager vs compiled training steps and predictor runs, stock vs pruned U-Nets, at a 128^3 patch.

What a user on a GPU would see, in one process, in the order that matters most if the time runs out:

1. **Networks** from one plans file made bigger (default: nnU-Net's 6-stage 3D U-Net, 32..320 features,
   128^3 patch): stock, Flat U-Net, random-largest keeping 20% of the parameters, and random-largest pruned
   to ``--latency-keep`` of the forward time *measured on this GPU* (the latency trainers' pruner, without
   training; its table and every pruning step are timed and reported).
2. **Training steps**: nnU-Net's own ``nnUNetTrainer.train_step`` (fp16 autocast, GradScaler, deep
   supervision DC+CE loss, SGD) on a synthetic batch of the plans' batch size, eager and
   ``torch.compile``d as nnU-Net compiles on CUDA; plus the stock network with STAMP's scoring and
   targeted-dropout hooks (eager, as while pruning). Trainers interleaved, medians; the first compiled step
   (the compile) is reported separately.
3. **Predictor**: ``nnUNetPredictor`` (``perform_everything_on_device``, Gaussian, tile step 0.5, no TTA
   unless ``--tta``) on a full ``--shape`` volume, eager and compiled (what ``nnUNet_compile=1
   nnUNetv2_predict`` does), interleaved, medians (nnunet_pruning/app/timing.py's time_networks, as scripts/benchmark_inference.py).
4. **Profile**: CUDA kernel time of one eager forward pass by kind (normalisation, layout conversions,
   convolutions), stock vs pruned: where the time goes.
5. **Recompile vs eager while pruning**: the stock network compiled, then pruned twice (random-largest,
   as a pruning trainer would between epochs) and re-compiled after each step; the compile cost of each
   new shape against the time a compiled step saves per iteration, and the break-even number of
   iterations between pruning steps.

Results go to ``--json`` after every part (a run cut short keeps what it measured).

    D=demo_output; N=Dataset900_SyntheticShapes
    python scripts/benchmark_gpu.py --plans $D/nnUNet_preprocessed/$N/nnUNetPlans.json --json gpu.json
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import statistics
import sys
import tempfile
import time
from types import SimpleNamespace

if __package__ in (None, ""):  # run as python scripts/benchmark_gpu.py: its sibling modules import as scripts.*
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nnunet_pruning.app.provenance import provenance  # noqa: E402
from nnunet_pruning.core.files import write_json  # noqa: E402
from scripts.kernel_profile import profile_forward  # noqa: E402

STOCK = "stock nnU-Net"


class Clock:
    """Seconds since the start, and whether ``budget_s`` still leaves ``need_s``."""

    def __init__(self, budget_s: float):
        self.start, self.budget_s = time.perf_counter(), budget_s

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def allows(self, need_s: float) -> bool:
        return self.elapsed() + need_s <= self.budget_s


def log(line: str) -> None:
    print(f"[gpu benchmark {time.strftime('%H:%M:%S')}] {line}", flush=True)


def prepare_networks(plans_file: str, configuration: str, args, device, clock: Clock) -> tuple[dict, dict]:
    """``({name: network on the CPU}, {name: how it was pruned})``; the latency target measured on ``device``, its
    pruning stopped once a quarter of the time budget is spent (the rest is for the timings)."""
    import torch

    from nnunet_pruning.app.reference_networks import LATENCY_REFERENCE, build_networks
    from nnunet_pruning.core.latency import LatencyDevice

    where = LatencyDevice(str(device), args.threads if device.type == "cpu" else 0)
    networks, targets = build_networks(plans_file, configuration, args.keep, [], args.latency_keep or None,
                                       latency_device=where, max_latency_steps=args.max_latency_steps, log=log,
                                       keep_pruning=lambda: clock.allows(args.budget_s * 0.75))
    networks.pop(LATENCY_REFERENCE, None)  # a CPU kernel choice: on a GPU it is stock
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return networks, {name: targets.get(name, {}) for name in networks}


def training_inputs(plans_file: str, configuration: str, batch: int) -> tuple[dict, dict]:
    """``(plans, dataset_json)`` as a trainer takes them, with the training batch size set."""
    with open(plans_file) as f:
        plans = json.load(f)
    with open(os.path.join(os.path.dirname(plans_file), "dataset.json")) as f:
        dataset_json = json.load(f)
    plans["configurations"][configuration]["batch_size"] = batch
    return plans, dataset_json


def make_trainer(network, plans: dict, dataset_json: dict, configuration: str, device, compiled: bool,
                 stamp_hooks: bool = False):
    """nnU-Net's trainer (``nnUNetTrainer``, or STAMP's when ``stamp_hooks``) initialised as nnUNetv2_train does,
    with ``network`` (a copy) in place of the one it built, and compiled as nnU-Net compiles."""
    import torch

    from nnunet_pruning.adapter.networks import resolve_trainer

    os.environ["nnUNet_compile"] = "f"  # compile below, explicitly, so eager and compiled differ only in that
    cls = resolve_trainer("nnUNetTrainerSTAMP" if stamp_hooks else "nnUNetTrainer")
    with contextlib.redirect_stdout(io.StringIO()):
        trainer = cls(dict(plans, continue_training=False), configuration, 0, dataset_json, device)
        trainer.initialize()
    if not stamp_hooks:  # STAMP's trainer keeps the (resizable) stock network it built itself
        trainer.network = copy.deepcopy(network).to(device)
        trainer.set_deep_supervision_enabled(True)
        trainer.optimizer, trainer.lr_scheduler = trainer.configure_optimizers()
    pruner = None
    if stamp_hooks:
        pruner = trainer.make_pruner()
        pruner.attach()
    if compiled:
        trainer.network = torch.compile(trainer.network)
    trainer.network.train()
    return trainer, pruner


def time_training(networks: dict, plans_file: str, configuration: str, device, args, clock: Clock) -> dict:
    from nnunet_pruning.core.clock import interleaved_seconds, seconds_once
    from nnunet_pruning.trainers.batches import synthetic_batch

    plans, dataset_json = training_inputs(plans_file, configuration, args.batch)
    trainers, results = {}, {}
    for name, net in networks.items():
        for compiled in (False, True):
            label = f"{name} [compiled]" if compiled else name
            trainer, _ = make_trainer(net, plans, dataset_json, configuration, device, compiled)
            trainers[label] = (trainer, None)
    trainers[f"{STOCK} + STAMP scoring hooks"] = make_trainer(None, plans, dataset_json, configuration, device,
                                                              False, stamp_hooks=True)
    batch = synthetic_batch(next(iter(trainers.values()))[0])
    for label, (trainer, _) in list(trainers.items()):
        if not clock.allows(args.compile_allowance_s if label.endswith("[compiled]") else 5):
            log(f"training: {label} skipped (time budget)")
            del trainers[label]
            continue
        first = seconds_once(lambda t=trainer: t.train_step(batch), device)
        for _ in range(args.warmup):
            trainer.train_step(batch)
        results[label] = {"first_step_s": first, "steps_s": []}
        log(f"training: {label}: first step {first:.2f} s")
    for r in range(args.repeats):
        for label, (trainer, _) in trainers.items():
            results[label]["steps_s"] += interleaved_seconds({label: lambda t=trainer: t.train_step(batch)}, 0,
                                                             args.steps, device)[label]
        log(f"training: round {r + 1}/{args.repeats} done")
    for label, r in results.items():
        r["median_step_s"] = statistics.median(r["steps_s"])
        r["compile_overhead_s"] = r["first_step_s"] - r["median_step_s"] if label.endswith("[compiled]") else None
    for label, r in results.items():
        base = label.removesuffix(" [compiled]")
        ref = STOCK + label[len(base):] if base in networks else STOCK
        r["speedup_vs_stock_same_mode"] = results[ref]["median_step_s"] / r["median_step_s"]
        r["speedup_vs_eager_stock"] = results[STOCK]["median_step_s"] / r["median_step_s"]
    del trainers
    return results


def time_predictor(networks: dict, plans_file: str, configuration: str, device, args) -> dict:
    import torch

    from nnunet_pruning.app.timing import time_networks

    from nnunet_pruning.adapter.networks import load_plans

    _, cm, dataset_json = load_plans(plans_file, configuration)
    generator = torch.Generator().manual_seed(0)
    volume = torch.randn((len(dataset_json["channel_names"]), *args.shape), generator=generator)
    settings = SimpleNamespace(compile="both", warmup=args.warmup, repeats=args.repeats, tta=args.tta,
                               step_size=0.5)
    timed = time_networks(networks, plans_file, configuration, [volume], device, settings)
    for name, t in timed.items():
        base = name.removesuffix(" [compiled]")
        t["speedup_vs_stock_same_mode"] = timed[STOCK + name[len(base):]]["median_s"] / t["median_s"]
        t["speedup_vs_eager_stock"] = timed[STOCK]["median_s"] / t["median_s"]
        t["forward_speedup_vs_stock_same_mode"] = timed[STOCK + name[len(base):]]["forward_per_tile_median_s"] / \
            t["forward_per_tile_median_s"]
    return timed


def profile_networks(networks: dict, configuration: str, plans_file: str, device, names: list[str]) -> dict:
    """Kernel time of an eager forward pass of one patch by kind, per network (scripts/kernel_profile.py)."""
    import torch

    from nnunet_pruning.adapter.networks import load_plans
    from nnunet_pruning.core.latency import LatencyDevice, _timing_copy

    _, cm, dataset_json = load_plans(plans_file, configuration)
    x = torch.randn((1, len(dataset_json["channel_names"]), *cm.patch_size), device=device)
    out = {}
    for name in names:
        model = _timing_copy(networks[name], LatencyDevice(str(device)))
        out[name] = profile_forward(model, x)
        log(f"profile {name}: {out[name]['kernel_ms_per_forward']:.2f} ms of kernels per forward; " +
            ", ".join(f"{k} {v:.0%}" for k, v in out[name]["share_by_kind"].items()))
        del model
    return out


def recompile_experiment(networks: dict, plans_file: str, configuration: str, device, args, clock: Clock) -> dict:
    """Stock net compiled, pruned twice by random-largest (-30% of the parameters each), re-compiled after each
    step: compile seconds per new shape, compiled vs eager step time at each shape."""
    import torch

    from nnunet_pruning.adapter.networks import load_plans
    from nnunet_pruning.core.clock import interleaved_seconds, seconds_once
    from nnunet_pruning.core.pruner import Pruner
    from nnunet_pruning.core.schedule import PruningSchedule
    from nnunet_pruning.trainers.batches import synthetic_batch

    plans, dataset_json = training_inputs(plans_file, configuration, args.batch)
    _, cm, _ = load_plans(plans_file, configuration)
    shape = (len(dataset_json["channel_names"]), *cm.patch_size)
    from nnunet_pruning.core.resizable import make_resizable

    net = make_resizable(copy.deepcopy(networks[STOCK]))
    trainer, _ = make_trainer(net, plans, dataset_json, configuration, device, compiled=False)
    batch = synthetic_batch(trainer)
    module = trainer.network
    pruner = Pruner(module, PruningSchedule(method="random_largest", keep_fraction=0.49, step_fraction=0.3), shape)
    shapes = []

    def steady(n: int) -> float:
        return statistics.median(interleaved_seconds({"step": lambda: trainer.train_step(batch)}, 0, n, device)["step"])

    for step in range(3):
        record = {"params": sum(p.numel() for p in module.parameters()),
                  "shape_compiled_before_in_this_run": step == 0 and "training" in args.parts}
        trainer.network = module
        trainer.optimizer, trainer.lr_scheduler = trainer.configure_optimizers()
        steady(max(1, args.warmup))  # warm-up
        record["eager_step_s"] = steady(args.steps * 2)
        if not clock.allows(args.compile_allowance_s):
            record["compiled"] = "skipped (time budget)"
            shapes.append(record)
            break
        torch._dynamo.reset()  # what a trainer rebuilding its compiled network after a step would do
        trainer.network = torch.compile(module)
        record["first_compiled_step_s"] = seconds_once(lambda: trainer.train_step(batch), device)
        steady(max(1, args.warmup))  # warm-up
        record["compiled_step_s"] = steady(args.steps * 2)
        record["compile_overhead_s"] = record["first_compiled_step_s"] - record["compiled_step_s"]
        saving = record["eager_step_s"] - record["compiled_step_s"]
        record["break_even_iterations"] = record["compile_overhead_s"] / saving if saving > 0 else None
        log(f"recompile: {record['params']:,} params: eager {record['eager_step_s'] * 1e3:.1f} ms, compiled "
            f"{record['compiled_step_s'] * 1e3:.1f} ms per step, compile {record['compile_overhead_s']:.1f} s: "
            f"pays off after {record['break_even_iterations'] or float('inf'):.0f} iterations")
        shapes.append(record)
        if step == 2:
            break
        trainer.network = module
        started = time.perf_counter()
        pruner.step(step, trainer.optimizer)
        record["pruning_step_s"] = time.perf_counter() - started
    return {"shapes": shapes, "iterations_per_epoch_nnunet": 250}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", required=True, help="a plans .json (dataset.json beside it)")
    parser.add_argument("-c", "--configuration", default="3d_fullres")
    parser.add_argument("--patch", type=int, nargs="+", default=[128, 128, 128])
    parser.add_argument("--stages", type=int, default=6)
    parser.add_argument("--max-width", type=int, default=320)
    parser.add_argument("--shape", type=int, nargs="+", default=[256, 256, 256], help="predictor volume")
    parser.add_argument("--batch", type=int, default=2, help="training batch size (nnU-Net 3d_fullres: 2)")
    parser.add_argument("--keep", type=float, default=0.2, help="random-largest keeps this share of params")
    parser.add_argument("--latency-keep", type=float, default=0.5, help="0: no latency-pruned network")
    parser.add_argument("--max-latency-steps", type=int, default=12)
    parser.add_argument("--device", default="cuda", help="cuda (or cpu, to try the script)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (with --device cpu)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="training steps per trainer per round")
    parser.add_argument("--tta", action="store_true")
    parser.add_argument("--parts", nargs="+", default=["training", "predictor", "profile", "recompile"])
    parser.add_argument("--budget-s", type=float, default=480, help="skip what would not finish by then")
    parser.add_argument("--compile-allowance-s", type=float, default=45, help="budget kept for each compile")
    parser.add_argument("--json", required=True)
    args = parser.parse_args(argv)
    clock = Clock(args.budget_s)
    scratch = tempfile.mkdtemp()
    os.environ["nnUNet_results"] = scratch  # trainers write their logs there
    os.environ["nnUNet_preprocessed"] = os.path.join(scratch, "pre")
    import torch

    from nnunet_pruning.app.reference_networks import override_plans

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as nnUNetv2_train and nnU-Net's predictor set it
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    with open(args.plans) as f:
        name = json.load(f)["dataset_name"]
    plans_file = override_plans(args.plans, args.configuration, args.patch, args.stages,
                                os.path.join(scratch, "pre", name), args.max_width)
    os.rename(plans_file, os.path.join(os.path.dirname(plans_file), "nnUNetPlans.json"))
    plans_file = os.path.join(os.path.dirname(plans_file), "nnUNetPlans.json")
    with open(plans_file) as f:  # nnU-Net's initialize() infers the dataset class from the data folder's files
        data = os.path.join(os.path.dirname(plans_file), json.load(f)["configurations"][args.configuration]
                            ["data_identifier"])
    os.makedirs(data, exist_ok=True)
    open(os.path.join(data, "placeholder.b2nd"), "wb").close()
    from nnunet_pruning.core.clock import cpu_model
    from nnunet_pruning.core.measure import count_gflops, count_params

    result = {**provenance(__file__, argv),
              "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
              "cuda": torch.version.cuda, "patch": args.patch, "stages": args.stages, "max_width": args.max_width,
              "volume": args.shape, "batch": args.batch, "tta": args.tta, "warmup": args.warmup,
              "repeats": args.repeats, "steps_per_round": args.steps, "cudnn_benchmark": device.type == "cuda",
              "autocast": "fp16 (nnU-Net's train_step and predictor on CUDA)" if device.type == "cuda" else "none"}

    def save():
        result["elapsed_s"] = clock.elapsed()
        write_json(result, args.json)

    log(f"device {result['device']}, torch {torch.__version__}")
    networks, result["pruning"] = prepare_networks(plans_file, args.configuration, args, device, clock)
    with open(os.path.join(os.path.dirname(plans_file), "dataset.json")) as f:
        channels = len(json.load(f)["channel_names"])
    result["networks"] = {n: {"params": count_params(net), "gflops_patch": count_gflops(net, channels, args.patch)}
                          for n, net in networks.items()}
    for n, s in result["networks"].items():
        s["flops_ratio_vs_stock"] = result["networks"][STOCK]["gflops_patch"] / s["gflops_patch"]
        log(f"{n}: {s['params']:,} params, {s['gflops_patch']:.1f} GFLOPs per patch ({s['flops_ratio_vs_stock']:.2f}x "
            f"fewer than stock)")
    save()

    def part(name: str, need_s: float, run) -> None:
        if name not in args.parts:
            return
        if not clock.allows(need_s):
            result[name] = f"skipped: the time budget ({args.budget_s:.0f} s) would run out"
            log(f"{name}: {result[name]}")
            return
        try:
            result[name] = run()
        except Exception as e:  # keep what the other parts measure
            import traceback

            traceback.print_exc()
            result[name] = f"failed: {type(e).__name__}: {e}"
        save()

    part("training", 30, lambda: time_training(networks, plans_file, args.configuration, device, args, clock))
    part("predictor", 60, lambda: time_predictor(networks, plans_file, args.configuration, device, args))
    names = [STOCK] + [n for n in networks if "latency" in n] + [n for n in networks if "params" in n]
    part("profile", 20, lambda: profile_networks(networks, args.configuration, plans_file, device, names))
    part("recompile", 2 * args.compile_allowance_s,
         lambda: recompile_experiment(networks, plans_file, args.configuration, device, args, clock))
    print_summary(result)
    save()
    log(f"wrote {args.json} after {clock.elapsed():.0f} s")
    return 0


def print_summary(result: dict) -> None:
    print(f"\n{result['device']}, torch {result['torch']}, patch {'x'.join(map(str, result['patch']))}, "
          f"{result['stages']} stages, batch {result['batch']}")
    for n, s in result["networks"].items():
        print(f"  {n:<42} {s['params']:>12,} params {s['gflops_patch']:>8.1f} GFLOPs/patch")
    if isinstance(result.get("training"), dict):
        print("training step (median s; speedup vs stock in the same mode; first step incl. compile)")
        for n, r in result["training"].items():
            print(f"  {n:<54} {r['median_step_s'] * 1e3:>8.1f} ms {r['speedup_vs_stock_same_mode']:>6.2f}x "
                  f"(vs eager stock {r['speedup_vs_eager_stock']:.2f}x) first {r['first_step_s']:.1f} s")
    if isinstance(result.get("predictor"), dict):
        print(f"predictor, volume {'x'.join(map(str, result['volume']))} (median s)")
        for n, t in result["predictor"].items():
            print(f"  {n:<54} {t['median_s']:>8.3f} s {t['speedup_vs_stock_same_mode']:>6.2f}x (vs eager stock "
                  f"{t['speedup_vs_eager_stock']:.2f}x) forward {t['forward_speedup_vs_stock_same_mode']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
