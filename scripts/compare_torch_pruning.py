#!/usr/bin/env python
"""Why nnunet_pruning uses its own surgery: Torch-Pruning on nnU-Net's U-Nets, group by group.

For every channel group found by nnunet_pruning, mask 2 channels (zero their consumers), then let
Torch-Pruning remove them from its dependency graph and compare the outputs (float64). Needs
``pip install torch-pruning`` (not a dependency of this package).

    python scripts/compare_torch_pruning.py
"""

from __future__ import annotations

import argparse
import copy
import sys

import torch

from nnunet_pruning.adapter.architectures import build_unet, unet_spec
from nnunet_pruning.core.groups import find_groups
from nnunet_pruning.core.surgery import mask_channels


def check(architecture: str, inplace: bool) -> tuple[int, dict]:
    import torch_pruning as tp

    spec = unet_spec(architecture, 3, 4, base_width=8)
    spec.network_arch_init_kwargs["nonlin_kwargs"] = {"inplace": inplace}
    torch.manual_seed(0)
    net = build_unet(spec).double().eval()
    x = torch.randn(1, 1, 16, 16, 16, dtype=torch.float64)
    exact, failures = 0, {}
    for i, _ in enumerate(find_groups(net)):
        candidate = copy.deepcopy(net)
        group = find_groups(candidate)[i]
        mask_channels(group, [0, 1])
        with torch.no_grad():
            reference = candidate(x)
        try:
            graph = tp.DependencyGraph().build_dependency(candidate, example_inputs=x)
            graph.get_pruning_group(group.producers[0].conv, tp.prune_conv_out_channels, idxs=[0, 1]).prune()
            with torch.no_grad():
                difference = float((candidate(x) - reference).abs().max())
            if difference < 1e-6:
                exact += 1
            else:
                failures[group.name] = f"output differs by {difference:.2e}"
        except Exception as e:  # report every failure mode, keep going
            failures[group.name] = f"{type(e).__name__}: {str(e)[:120]}"
    return exact, failures


def main(argv=None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    try:
        import torch_pruning  # noqa: F401  (only to check it is installed)
    except ImportError:
        print("pip install torch-pruning first", file=sys.stderr)
        return 2
    from importlib.metadata import version

    print(f"torch-pruning {version('torch-pruning')}, torch {torch.__version__}")
    for architecture in ("plain", "resenc"):
        for inplace in (True, False):
            exact, failures = check(architecture, inplace)
            print(f"{architecture:6} LeakyReLU(inplace={inplace!s:5}): {exact} groups exact, {len(failures)} failed")
            for name, why in list(failures.items())[:3]:
                print(f"    {name}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
