"""STAMP's targeted dropout: channel dropout after every prunable activation, one probability per group.

Applied by forward hooks in training mode only, so the module tree and the state dict stay those of the
plain network (predict and checkpoints never see it).
"""

from __future__ import annotations

from typing import Sequence

import torch

from nnunet_pruning.core.groups import ChannelGroup, GroupHooks

__all__ = ["INITIAL_P", "BASE_P", "TargetedDropout", "targeted_probabilities"]

INITIAL_P = 0.005
BASE_P = 0.10


def targeted_probabilities(normalised: dict[str, torch.Tensor], base: float = BASE_P) -> dict[str, float]:
    """STAMP's update after a prune.

    Rank all channels globally by normalised score, ascending; the channel at position i gets the value
    ``N - 1 - i`` (the least important gets ``N - 1``); average the values per group, divide by the
    largest group average and multiply by ``base``. The group whose channels are least important on
    average gets ``base``.
    """
    names, values = [], []
    for name, score in normalised.items():
        names += [name] * len(score)
        values.append(score)
    flat = torch.cat(values) if values else torch.zeros(0)
    n = len(flat)
    order = torch.argsort(flat, stable=True)
    rank_value = torch.empty(n, dtype=torch.float64)
    rank_value[order] = (n - 1 - torch.arange(n)).to(torch.float64)
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for name, value in zip(names, rank_value.tolist()):
        sums[name] = sums.get(name, 0.0) + value
        counts[name] = counts.get(name, 0) + 1
    averages = {name: sums[name] / counts[name] for name in sums}
    top = max(averages.values(), default=0.0)
    return {name: (base * avg / top if top > 0 else 0.0) for name, avg in averages.items()}


class TargetedDropout(GroupHooks):
    """Channel dropout hooks on every group's activation modules, with per-group probabilities."""

    def __init__(self, groups: Sequence[ChannelGroup], initial: float = INITIAL_P):
        super().__init__(groups)
        self.probabilities = {g.name: float(initial) for g in self.groups}

    def _hook(self, name: str):
        def hook(module, inputs, output):
            p = self.probabilities.get(name, 0.0)
            if not module.training or p <= 0:
                return None
            shape = output.shape[:2] + (1,) * (output.dim() - 2)
            mask = torch.empty(shape, device=output.device, dtype=output.dtype).bernoulli_(1 - p) / (1 - p)
            return output * mask
        return hook

    def update(self, normalised: dict[str, torch.Tensor], base: float = BASE_P) -> None:
        self.probabilities = targeted_probabilities(normalised, base)
