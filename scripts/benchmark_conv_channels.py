#!/usr/bin/env python
"""Time of one 3x3x3 Conv3d(c, c) per channel count and input size on the CPU: shows where PyTorch leaves
its fast (oneDNN) path for narrow layers on small inputs, which caps what pruning can gain there.

    python scripts/benchmark_conv_channels.py --json docs/benchmarks/conv_channels.json

Warm-up runs first, then the median of ``--repeats`` runs; batch 1, inference mode.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch

from nnunet_pruning.app.provenance import write_result
from nnunet_pruning.core.clock import interleaved_seconds

SHAPES = ([32, 32, 32], [64, 64, 8], [64, 64, 64])
CHANNELS = (16, 20, 21, 24, 32)


def time_conv(channels: int, shape, warmup: int, repeats: int) -> float:
    conv = torch.nn.Conv3d(channels, channels, 3, padding=1)
    x = torch.randn(1, channels, *shape)
    with torch.inference_mode():
        return statistics.median(interleaved_seconds({"conv": lambda: conv(x)}, warmup, repeats)["conv"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, nargs="+", default=list(CHANNELS))
    parser.add_argument("--shapes", nargs="+", default=["x".join(map(str, s)) for s in SHAPES],
                        help="spatial sizes like 32x32x32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    shapes = [[int(v) for v in s.split("x")] for s in args.shapes]
    results = {"threads": args.threads, "repeats": args.repeats, "warmup": args.warmup, "median_ms": {}}
    widest = max(args.channels)
    for shape in shapes:
        key = "x".join(map(str, shape))
        ms = {c: 1000 * time_conv(c, shape, args.warmup, args.repeats) for c in args.channels}
        results["median_ms"][key] = ms
        cells = ", ".join(f"{c} ch {v:.1f} ms" for c, v in ms.items())
        print(f"{key:>10}: {cells}   (time of {min(args.channels)} ch / {widest} ch: "
              f"{ms[min(args.channels)] / ms[widest]:.2f}, FLOPs ratio {(min(args.channels) / widest) ** 2:.2f})")
    write_result(results, args.json, __file__, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
