"""nnunet_pruning: smaller, faster nnU-Net models without leaving nnU-Net.

The layers, each importing only the ones below it:

- :mod:`nnunet_pruning.core`: pure torch (channel groups, surgery, scores, strategies, schedules, measures);
- :mod:`nnunet_pruning.adapter` and :mod:`nnunet_pruning.trainers`: nnU-Net's plans, checkpoints, trainers;
- :mod:`nnunet_pruning.app`: the ``nnunet-pruning`` command line.

The names below are the public Python API; they are imported on first use, so ``import nnunet_pruning``
stays cheap (the command line does not pay for torch until it needs it).

Example:
    >>> from nnunet_pruning import find_groups, remove_channels
    >>> for group in find_groups(net):  # doctest: +SKIP
    ...     remove_channels(net, group, range(group.width // 2))
"""

from __future__ import annotations

import importlib

__all__ = ["find_groups", "remove_channels", "mask_channels", "make_resizable", "Pruner", "PruningSchedule",
           "STRATEGIES", "PruningStrategy", "count_params", "count_gflops", "PruningError"]

_WHERE = {
    "find_groups": "nnunet_pruning.core.groups",
    "remove_channels": "nnunet_pruning.core.surgery",
    "mask_channels": "nnunet_pruning.core.surgery",
    "make_resizable": "nnunet_pruning.core.resizable",
    "Pruner": "nnunet_pruning.core.pruner",
    "PruningSchedule": "nnunet_pruning.core.schedule",
    "STRATEGIES": "nnunet_pruning.core.strategies",
    "PruningStrategy": "nnunet_pruning.core.strategies",
    "count_params": "nnunet_pruning.core.measure",
    "count_gflops": "nnunet_pruning.core.measure",
    "PruningError": "nnunet_pruning.core.errors",
}


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nnunet_pruning' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
