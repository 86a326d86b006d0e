"""Reading and writing nnU-Net checkpoints: the one place that touches ``checkpoint_*.pth`` files.

Writes are atomic (:mod:`nnunet_pruning.core.files`): a crash during a save never leaves a truncated file,
and the file gets the mode nnU-Net's own ``torch.save`` would give it. Reads end in one-line errors for
corrupt or foreign files.
"""

from __future__ import annotations

import torch

from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.files import atomic_write

__all__ = ["atomic_torch_save", "load_checkpoint_file"]


def atomic_torch_save(obj, path: str) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``."""
    atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint_file(path: str) -> dict:
    """Load an nnU-Net checkpoint on the CPU, with a one-line error for a corrupt or foreign file."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for truncated or foreign files
        raise PruningError(f"checkpoint {path} cannot be read ({type(e).__name__}); it is corrupt or truncated, "
                           f"use another checkpoint (e.g. checkpoint_best.pth) or retrain") from None
    if not isinstance(checkpoint, dict) or "network_weights" not in checkpoint:
        raise PruningError(f"{path} is not an nnU-Net checkpoint (no network_weights); pass a checkpoint_*.pth "
                           f"written by nnUNetv2_train")
    return checkpoint
