"""The network inside its wrappers: ``DistributedDataParallel`` (``.module``) and ``torch.compile`` (``._orig_mod``)."""

from __future__ import annotations

from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["unwrap"]


def unwrap(network: nn.Module) -> nn.Module:
    """The module itself, under any nesting of DDP and torch.compile wrappers (what pruning changes and what a
    checkpoint stores)."""
    while True:
        inner = getattr(network, "_orig_mod", None)
        if inner is None and isinstance(network, DistributedDataParallel):
            inner = network.module
        if inner is None:
            return network
        network = inner
