"""Where one forward pass spends its kernel time, by kind: convolution, normalisation, layout conversion,
elementwise (used by scripts/benchmark_gpu.py; on a CPU the operators' time, to try the script).

The kinds are read off the kernels' names (cuDNN, CUTLASS and ATen spell them differently); a kernel no key
matches is "other".
"""

from __future__ import annotations

import contextlib

import torch
from torch.profiler import ProfilerActivity, profile

from nnunet_pruning.core.clock import seconds_once

KINDS = (("convolution", ("xmma", "implicit_gemm", "conv", "cutlass", "winograd", "fprop", "dgrad", "wgrad", "gemm")),
         ("normalisation", ("bn_fw", "bn_bw", "batch_norm", "norm", "welford")),
         ("layout conversion", ("tonhwc", "tonchw", "transpose", "permute", "copy")),
         ("elementwise", ("elementwise", "leaky_relu", "add", "mul")))


def kernel_kind(name: str) -> str:
    low = name.lower()
    for kind, keys in KINDS:
        if any(k in low for k in keys):
            return kind
    return "other"


def profile_forward(model: torch.nn.Module, x: torch.Tensor, passes: int = 3) -> dict:
    """Kernel time of ``passes`` eager forward passes of ``model`` on ``x`` (fp16 autocast on CUDA, as nnU-Net's
    predictor runs) after as many untimed ones: milliseconds per forward, the share of each kind and the 8
    costliest kernels."""
    cuda = x.device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.float16) if cuda else contextlib.nullcontext()
    with torch.no_grad(), autocast:
        seconds_once(lambda: [model(x) for _ in range(passes)], x.device)  # warm-up, synchronised
        with profile(activities=[ProfilerActivity.CUDA if cuda else ProfilerActivity.CPU]) as prof:
            seconds_once(lambda: [model(x) for _ in range(passes)], x.device)
    kernels: dict[str, float] = {}
    for event in prof.key_averages():  # CUDA: the kernels' own time (aten ops only launch them); CPU: ops
        micros = getattr(event, "self_device_time_total", 0) if cuda else event.self_cpu_time_total
        if micros > 0 and event.key and not (cuda and event.key.startswith("aten::")):
            kernels[event.key] = kernels.get(event.key, 0) + micros
    total = sum(kernels.values()) or 1
    by_kind: dict[str, float] = {}
    for key, micros in kernels.items():
        by_kind[kernel_kind(key)] = by_kind.get(kernel_kind(key), 0) + micros
    return {"kernel_ms_per_forward": total / passes / 1e3,
            "share_by_kind": {k: v / total for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])},
            "top_kernels": [{"kernel": k[:120], "share": v / total}
                            for k, v in sorted(kernels.items(), key=lambda kv: -kv[1])[:8]]}
