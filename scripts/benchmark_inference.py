#!/usr/bin/env python
"""Full-volume inference time through nnU-Net's sliding-window predictor: stock vs Flat vs pruned U-Nets.

The networks come from one plans file: the stock U-Net (``nnUNetTrainer``), the same with oneDNN
convolutions (``nnunet_pruning/core/onednn.py``, which every network of this package's trainers uses: the row
that shows the kernel choice's own share of a speedup), the Flat U-Net (``nnUNetTrainerFlatUNet``) and the
U-Net pruned by random-largest to ``--keep`` of its parameters (built as ``nnUNetTrainerRandomLargest``
builds it, so as ``nnUNetv2_predict`` runs a pruned model); ``--models`` adds trained model folders (e.g. the
demo's STAMP model, pruned in training).
Every network goes into an ``nnUNetPredictor`` (``manual_initialization``, as nnU-Net's own validation
does) and predicts the same full volume(s) with ``predict_logits_from_preprocessed_data``: sliding
window, Gaussian weighting, mirroring off unless ``--tta``. Warm-up runs first, then timed runs
interleaved across networks; medians are reported, and the measured speedup is printed beside the FLOPs
ratio (FLOPs of one patch forward pass, which is also the ratio over all tiles) -- the limit to aim for.
One forward pass of one patch is timed too, so the share of the prediction spent in the network shows
how much of the time pruning can remove at all.

    D=demo_output; N=Dataset900_SyntheticShapes
    python scripts/benchmark_inference.py --plans $D/nnUNet_preprocessed/$N/nnUNetPlans.json \\
        --models $D/nnUNet_results/$N/nnUNetTrainerSTAMP_demo__nnUNetPlans__3d_fullres \\
        --shape 64 64 64 --json benchmark_inference.json

Runs on the CPU, and on CUDA too when torch sees a GPU (``--device`` picks one).
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from nnunet_pruning.adapter.networks import load_plans
from nnunet_pruning.app.machine import OtherCpuLoad
from nnunet_pruning.app.provenance import write_result
from nnunet_pruning.app.reference_networks import LATENCY_REFERENCE, build_networks, override_plans
from nnunet_pruning.app.timing import time_networks
from nnunet_pruning.core import runtimes
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.measure import count_gflops, count_params


def _base_name(label: str) -> str:
    """The network's name without the ``[compiled]`` / ``[backend]`` suffix of its timing entry."""
    for suffix in (" [compiled]", *(f" [{b}]" for b in runtimes.RUNTIMES)):
        label = label.removesuffix(suffix)
    return label


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", required=True, help="a plans .json (dataset.json beside it)")
    parser.add_argument("-c", "--configuration", default="3d_fullres")
    parser.add_argument("--shape", type=int, nargs="+", help="full-volume size in voxels (default: the plans' "
                                                             "median image size of the configuration)")
    parser.add_argument("--volumes", type=int, default=2, help="different random volumes (default 2)")
    parser.add_argument("--keep", type=float, default=0.2, help="random-largest keeps this share of params")
    parser.add_argument("--models", nargs="*", default=[], help="trained model folders to add (first fold)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: the CPU, and CUDA too when available")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup-volume", choices=("full", "patch"), default="full",
                        help="warm up on the full volume, or on one patch-sized tile of it (large volumes on a CPU)")
    parser.add_argument("--step-size", type=float, default=0.5, help="sliding-window tile step (nnU-Net: 0.5)")
    parser.add_argument("--tta", action="store_true", help="mirroring on (nnU-Net's default at predict time)")
    parser.add_argument("--latency-keep", type=float, help="add random-largest pruned to this share of the forward "
                        "time measured on this CPU (the latency trainers' pruner, no training)")
    parser.add_argument("--compile", choices=("eager", "compiled", "both"), default="eager",
                        help="torch.compile the networks as nnUNet_compile=1 nnUNetv2_predict does (default eager)")
    parser.add_argument("--patch", type=int, nargs="+", help="override the plans' patch size")
    parser.add_argument("--stages", type=int, help="override the plans' number of U-Net stages")
    parser.add_argument("--max-width", type=int, help="with --stages: the widest stage (nnU-Net's default plans: 320)")
    parser.add_argument("--minimal", action="store_true", help="only stock, the latency-pruned network and "
                        "--models (no Flat U-Net, no random-largest by params): for large volumes on a CPU")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="time only these networks (names as the "
                        "table prints them, without [compiled]; stock nnU-Net is always timed): large volumes on a CPU")
    parser.add_argument("--backends", nargs="+", default=["torch"], choices=runtimes.BACKENDS,
                        help="on the CPU, each network also eager on these runtimes (default: torch only)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if not 0 < args.keep < 1:
        parser.error(f"--keep must be in (0, 1), got {args.keep}")
    if args.latency_keep is not None and not 0 < args.latency_keep < 1:
        parser.error(f"--latency-keep must be in (0, 1), got {args.latency_keep}")
    try:
        for backend in args.backends:
            runtimes.require(backend)
    except PruningError as e:
        parser.error(str(e))
    if args.patch or args.stages:
        import tempfile

        args.plans = override_plans(args.plans, args.configuration, args.patch, args.stages, tempfile.mkdtemp(),
                                    args.max_width)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("nnUNet_def_n_proc", str(args.threads))  # the predictor caps its threads with it
    try:
        _, cm, dataset_json = load_plans(args.plans, args.configuration)
        networks, targets = build_networks(args.plans, args.configuration, args.keep, args.models,
                                           args.latency_keep, args.threads, args.minimal)
    except PruningError as e:
        print(f"benchmark_inference: error: {e}", file=sys.stderr)
        return 2
    if args.only:
        unknown = sorted(set(args.only) - set(networks))
        if unknown:
            print(f"benchmark_inference: error: --only {unknown[0]!r} is none of the networks: "
                  f"{', '.join(repr(n) for n in networks)}", file=sys.stderr)
            return 2
        networks = {name: net for name, net in networks.items() if name == "stock nnU-Net" or name in args.only}
    shape = args.shape or [int(s) for s in cm.median_image_size_in_voxels]
    channels = len(dataset_json["channel_names"])
    generator = torch.Generator().manual_seed(0)
    volumes = [torch.randn((channels, *shape), generator=generator) for _ in range(args.volumes)]
    patch = list(cm.patch_size)
    stats = {name: {"params": count_params(net), "gflops_patch": count_gflops(net, channels, patch)}
             for name, net in networks.items()}
    devices = [torch.device("cpu")] if args.device == "cpu" else [torch.device("cuda")] if args.device == "cuda" \
        else [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    results = {"plans": os.path.abspath(args.plans), "configuration": args.configuration, "volume_shape": shape,
               "architecture": {k: cm.network_arch_init_kwargs[k] for k in ("n_stages", "features_per_stage")},
               "compile": args.compile, "latency_targets": targets,
               "patch_size": patch, "volumes": args.volumes, "tile_step_size": args.step_size, "tta": args.tta,
               "warmup": args.warmup, "repeats": args.repeats, "threads": args.threads,
               "networks": stats, "devices": {}}
    stock = "stock nnU-Net"
    for device in devices:
        if device.type == "cuda":
            results["gpu"] = torch.cuda.get_device_name(0)
        with OtherCpuLoad() as load:
            timed = time_networks(networks, args.plans, args.configuration, volumes, device, args)
        results.setdefault("other_cpu_cores", {})[device.type] = load.cores
        results.setdefault("other_cpu_cores_peak", {})[device.type] = load.peak
        if load.warning():
            print(f"[benchmark {device.type}] {load.warning()}", flush=True)
        for name, t in timed.items():
            base = _base_name(name)
            same_mode = stock + name[len(base):]  # compiled vs compiled stock, eager vs eager stock, backend too
            t["speedup_vs_stock"] = timed[same_mode]["median_s"] / t["median_s"]
            t["speedup_vs_eager_stock"] = timed.get(stock, timed[same_mode])["median_s"] / t["median_s"]
            t["flops_ratio_vs_stock"] = stats[stock]["gflops_patch"] / stats[base]["gflops_patch"]
            t["forward_speedup_vs_stock"] = timed[same_mode]["forward_per_tile_median_s"] / \
                t["forward_per_tile_median_s"]
            if base in targets:  # the latency measured now against the target it was pruned to, relative to
                # the unpruned network the pruner timed: the trainers' build, i.e. with oneDNN convolutions
                reference = LATENCY_REFERENCE if LATENCY_REFERENCE + name[len(base):] in timed else stock
                t["latency_reference"] = reference
                t["latency_fraction_now"] = t["forward_per_tile_median_s"] / \
                    timed[reference + name[len(base):]]["forward_per_tile_median_s"]
                t["latency_vs_target"] = t["latency_fraction_now"] / targets[base]["keep_fraction"]
        results["devices"][device.type] = timed
    print(f"\nfull volume {'x'.join(map(str, shape))} (patch {'x'.join(map(str, patch))}), tile step {args.step_size}, "
          f"TTA {'on' if args.tta else 'off'}, {args.threads} CPU threads, median of {args.repeats} x {args.volumes}")
    header = f"{'network':<44} {'device':<6} {'params':>11} {'GFLOPs/patch':>12} {'median s':>9} {'speedup':>8} " \
             f"{'vs eager':>8} {'FLOPs ratio':>11} {'fwd/tile s':>10} {'fwd speedup':>11} {'net share':>9}"
    print(header + "\n" + "-" * len(header))
    for device, timed in results["devices"].items():
        for name, t in timed.items():
            base = _base_name(name)
            print(f"{name[:44]:<44} {device:<6} {stats[base]['params']:>11,} {stats[base]['gflops_patch']:>12.2f} "
                  f"{t['median_s']:>9.3f} {t['speedup_vs_stock']:>7.2f}x {t['speedup_vs_eager_stock']:>7.2f}x "
                  f"{t['flops_ratio_vs_stock']:>10.2f}x "
                  f"{t['forward_per_tile_median_s']:>10.3f} {t['forward_speedup_vs_stock']:>10.2f}x "
                  f"{100 * t['network_share']:>8.0f}%")
    print("speedup: whole sliding-window prediction, against stock run the same way (compiled, on the same backend); "
          "vs eager: against stock nnU-Net as nnUNetv2_predict runs it (PyTorch, eager); fwd/tile: one network forward pass of one patch; net share: "
          "tiles x fwd/tile as a share of the prediction time (the rest is tiling, Gaussian weighting and "
          "aggregation, the same for every network)")
    for device, timed in results["devices"].items():
        print(f"ran on ({device}): " + "; ".join(f"{name}: {t['backend']}" for name, t in timed.items()))
    for name, target in targets.items():
        for device, timed in results["devices"].items():
            if name in timed:
                print(f"{name}: pruned to {target['keep_fraction']:.0%} of the forward time on {target['device']}; "
                      f"measured now ({device}): {timed[name]['latency_fraction_now']:.1%} = "
                      f"{timed[name]['latency_vs_target']:.2f}x the target")
    write_result(results, args.json, __file__, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
