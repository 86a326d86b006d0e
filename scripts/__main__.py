"""``python -m scripts [NAME [options]]``: list the benchmarks, or run one (see scripts/__init__.py)."""

from __future__ import annotations

import importlib
import sys

#: name on the command line -> module in scripts/
BENCHMARKS = {"inference": "benchmark_inference", "gpu": "benchmark_gpu", "training-time": "benchmark_training_time",
              "training": "benchmark_training", "pruned-forward": "benchmark_pruned_forward",
              "conv-channels": "benchmark_conv_channels", "torch-pruning": "compare_torch_pruning",
              "backends": "benchmark_backends", "scoring": "benchmark_scoring",
              "call-overhead": "benchmark_call_overhead", "latency-recheck": "latency_recheck",
              "pool-dice": "pool_dice"}


def _summary(module_name: str) -> str:
    import ast
    import os

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{module_name}.py")
    with open(path) as f:
        doc = ast.get_docstring(ast.parse(f.read())) or ""
    return doc.split("\n\n")[0].replace("\n", " ")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("python -m scripts NAME [options]   (python -m scripts NAME --help for its options)\n")
        for name, module in BENCHMARKS.items():
            print(f"  {name:15s} {_summary(module)}")
        return 0
    if argv[0] not in BENCHMARKS:
        print(f"scripts: error: no benchmark {argv[0]!r}; one of {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"scripts.{BENCHMARKS[argv[0]]}")
    sys.argv = [f"python -m scripts {argv[0]}", *argv[1:]]
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
