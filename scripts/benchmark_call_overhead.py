#!/usr/bin/env python
"""What this package's inference wrappers add to each call of a network, the network's own work left out:
nnU-Net's predictor calls it 8 times per tile with mirroring, so a millisecond here is 8 per tile.

    python -m scripts call-overhead --json docs/benchmarks/call_overhead_cpu.json

For nnU-Net's 6-stage 3D U-Nets (PlainConvUNet and ResidualEncoderUNet, 32-320 features; the overhead depends on
the number of modules and tensors, not on their widths): a CUDA-graphed call (core/cuda_inference.py) with the
capture stubbed (replay returns a ready tensor; runs on the CPU), the key of a runtime's compiled model
(core/runtime_forward.py's ``_weights_key``), and what walking the network costs (what both did on every call
before 2026-11-28). Medians of ``--repeats`` rounds of ``--calls`` calls each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from unittest import mock

import torch

from nnunet_pruning.app.machine import OtherCpuLoad
from nnunet_pruning.app.provenance import write_result
from nnunet_pruning.core import cuda_inference, runtime_forward
from nnunet_pruning.core.cuda_inference import use_cuda_inference
from nnunet_pruning.core.clock import interleaved_seconds
from nnunet_pruning.core.resizable import make_resizable
from nnunet_pruning.core.runtime_forward import use_runtime


def network(architecture: str) -> torch.nn.Module:
    from dynamic_network_architectures.architectures.unet import PlainConvUNet, ResidualEncoderUNet

    common = dict(input_channels=1, n_stages=6, features_per_stage=[32, 64, 128, 256, 320, 320],
                  conv_op=torch.nn.Conv3d, kernel_sizes=[[3, 3, 3]] * 6, strides=[[1, 1, 1]] + [[2, 2, 2]] * 5,
                  num_classes=3, n_conv_per_stage_decoder=[2] * 5, conv_bias=True,
                  norm_op=torch.nn.InstanceNorm3d, norm_op_kwargs={"eps": 1e-5, "affine": True},
                  nonlin=torch.nn.LeakyReLU, nonlin_kwargs={"inplace": True})
    if architecture == "plain":
        return PlainConvUNet(n_conv_per_stage=[2] * 6, **common)
    return ResidualEncoderUNet(n_blocks_per_stage=[1, 3, 4, 6, 6, 6], **common)


def microseconds(call, calls: int, repeats: int) -> float:
    """Median microseconds per call over ``repeats`` rounds of ``calls`` calls (core/latency.py's timing)."""
    def batch():
        for _ in range(calls):
            call()
    return 1e6 * statistics.median(interleaved_seconds({"calls": batch}, 1, repeats)["calls"]) / calls


def measure(architecture: str, calls: int, repeats: int) -> dict:
    net = use_runtime(use_cuda_inference(make_resizable(network(architecture))), "torch").eval()
    net.graph_report = lambda line: None
    x, ready = torch.zeros(1, 1, 8, 8, 8), torch.zeros(1)
    stub = mock.patch.multiple(cuda_inference, _on_cuda=lambda t: torch.is_tensor(t),
                               _capture=lambda forward, t: ((lambda new: ready), 0))
    with stub, mock.patch.dict("os.environ", {cuda_inference.VARIABLE: "1"}), torch.inference_mode():
        graphed = microseconds(lambda: net(x), calls, repeats)
    net.runtime_backend = "onnxruntime"  # only its key is timed: no model is made
    return {"tensors": len(runtime_forward._tensors(net)),
            "graphed_call_us": round(graphed, 1),
            "runtime_key_us": round(microseconds(net._weights_key, calls, repeats), 1),
            "walk_addresses_us": round(microseconds(lambda: cuda_inference._layout(net), calls, repeats), 1),
            "walk_list_and_signature_us": round(microseconds(
                lambda: runtime_forward._signature(runtime_forward._tensors(net)), calls, repeats), 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    result = {"threads": torch.get_num_threads(), "calls": args.calls, "repeats": args.repeats, "networks": {}}
    print(f"{'network':8s} {'tensors':>7s} {'graphed call':>13s} {'runtime key':>12s} "
          f"{'walk: addresses':>16s} {'walk: list+signature':>21s}   (microseconds per call)")
    with OtherCpuLoad() as load:
        for architecture in ("plain", "resenc"):
            row = result["networks"][architecture] = measure(architecture, args.calls, args.repeats)
            print(f"{architecture:8s} {row['tensors']:7d} {row['graphed_call_us']:13.1f} "
                  f"{row['runtime_key_us']:12.1f} {row['walk_addresses_us']:16.1f} "
                  f"{row['walk_list_and_signature_us']:21.1f}", flush=True)
    result["other_load_cores"] = load.cores
    if load.warning():
        print(load.warning(), file=sys.stderr)
    write_result(result, args.json, __file__, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
