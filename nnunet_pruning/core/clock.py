"""The clock of the package and its benchmark scripts: one timed call, interleaved rounds, and the CPU's name.

Every time this package reports (latency tables, ``compare --time``, the benchmark scripts) is
:func:`seconds_once`; every comparison of several runs is :func:`interleaved_seconds`, so that a change of the
machine's load hits every run alike. Figures name the CPU (:func:`cpu_model`): the same code timed very
differently on two 2-core machines (docs/results.md).
"""

from __future__ import annotations

import platform
import time
from typing import Callable

import torch

__all__ = ["seconds_once", "interleaved_seconds", "cpu_model"]


def seconds_once(run: Callable[[], object], device: str | torch.device = "cpu") -> float:
    """Wall seconds of one call of ``run()``; on CUDA the device is synchronised before and after, so the
    figure is the work's, not the launch's."""
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    run()
    if cuda:
        torch.cuda.synchronize(device)
    return time.perf_counter() - started


def interleaved_seconds(runs: dict[str, Callable[[], object]], warmup: int, repeats: int,
                        device: str | torch.device = "cpu",
                        on_run: Callable[[int, str, float], None] | None = None) -> dict[str, list[float]]:
    """Seconds of every run of ``runs``: each ``warmup`` times untimed, then ``repeats`` rounds in which each runs
    once (interleaved). ``on_run(round, name, seconds)`` after each timed run. Returns ``{name: [seconds per
    round]}``; take the median."""
    for name, run in runs.items():
        for _ in range(warmup):
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(repeats):
        for name, run in runs.items():
            times[name].append(seconds_once(run, device))
            if on_run is not None:
                on_run(r, name, times[name][-1])
    return times


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; elsewhere what :mod:`platform` knows): time tables and benchmark
    JSONs name it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
