#!/usr/bin/env python
"""Forward-pass time of a pruned U-Net against the unpruned one, side by side in one run.

Builds an nnU-Net-style U-Net, copies it, removes a fraction of the channels of *every* group from the
copy (lowest L1-norm filters first), checks the pruned copy still runs, then times both on the same
input: warm-up runs first, then repeated timed runs, median reported. Prints the measured speedup next
to the FLOPs ratio (the limit to aim for) and writes JSON.

    python scripts/benchmark_pruned_forward.py --fraction 0.5 --json bench_forward.json
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys

import torch

from nnunet_pruning.adapter.architectures import build_unet, unet_spec
from nnunet_pruning.app.provenance import write_result
from nnunet_pruning.core.groups import find_groups, is_transposed
from nnunet_pruning.core.clock import interleaved_seconds
from nnunet_pruning.core.measure import count_gflops, count_params
from nnunet_pruning.core.surgery import remove_channels


def prune_every_group(net, fraction: float) -> None:
    """Remove ``fraction`` of each group's channels: those whose producers' weights have the lowest L1 norm."""
    for group in find_groups(net):
        n_remove = int(group.width * fraction)
        if n_remove == 0 or group.width - n_remove < 1:
            continue
        scores = sum(p.conv.weight.detach().abs().transpose(0, 1 if is_transposed(p.conv) else 0).flatten(1).sum(1)
                     for p in group.producers)
        remove_channels(net, group, scores.argsort()[:n_remove].tolist())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--architecture", choices=("plain", "resenc"), default="plain")
    parser.add_argument("--stages", type=int, default=5)
    parser.add_argument("--patch", type=int, nargs="+", default=[64, 64, 64], help="spatial size (2 or 3 values)")
    parser.add_argument("--fraction", type=float, default=0.5, help="fraction of every group's channels removed")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if not 0 < args.fraction < 1:
        parser.error(f"--fraction must be in (0, 1), not {args.fraction}")
    if args.threads:
        torch.set_num_threads(args.threads)

    dim = len(args.patch)
    spec = unet_spec(args.architecture, dim=dim, n_stages=args.stages)
    torch.manual_seed(0)
    stock = build_unet(spec).eval()
    pruned = copy.deepcopy(stock)
    prune_every_group(pruned, args.fraction)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    result = {
        "architecture": args.architecture, "stages": args.stages, "patch": args.patch, "fraction": args.fraction,
        "params": {"stock": count_params(stock), "pruned": count_params(pruned)},
        "gflops": {"stock": count_gflops(stock, 1, args.patch), "pruned": count_gflops(pruned, 1, args.patch)},
        "cpu_threads": torch.get_num_threads(), "timings": {},
    }
    result["flops_ratio"] = result["gflops"]["stock"] / result["gflops"]["pruned"]
    for device in devices:
        x = torch.randn(1, 1, *args.patch, device=device)
        print(f"[bench] {device.type}: timing stock and pruned, interleaved ({args.warmup} warm-up + "
              f"{args.repeats} runs each)", flush=True)
        nets = {"stock": stock.to(device), "pruned": pruned.to(device)}
        with torch.inference_mode():
            times = interleaved_seconds({name: (lambda n=net: n(x)) for name, net in nets.items()}, args.warmup,
                                        args.repeats, device)
        medians = {name: statistics.median(t) for name, t in times.items()}
        stock.to("cpu"), pruned.to("cpu")
        name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
        result["timings"][device.type] = {"device": name, "median_seconds": medians,
                                          "speedup": medians["stock"] / medians["pruned"]}
    print(f"\n{args.architecture} U-Net, {args.stages} stages, patch {'x'.join(map(str, args.patch))}, "
          f"{args.fraction:.0%} of every group's channels removed")
    print(f"{'':10} {'params':>12} {'GFLOPs':>9}")
    for name in ("stock", "pruned"):
        print(f"{name:10} {result['params'][name]:>12,} {result['gflops'][name]:>9.2f}")
    print(f"FLOPs ratio stock/pruned: {result['flops_ratio']:.2f}x")
    for device, t in result["timings"].items():
        print(f"{device} ({t['device']}): median forward stock {t['median_seconds']['stock']:.3f} s, pruned "
              f"{t['median_seconds']['pruned']:.3f} s -> measured speedup {t['speedup']:.2f}x "
              f"(FLOPs ratio {result['flops_ratio']:.2f}x)")
    write_result(result, args.json, __file__, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
