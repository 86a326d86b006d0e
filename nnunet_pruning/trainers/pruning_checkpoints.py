"""Checkpoints of a pruning run: nnU-Net's own (its ``save_checkpoint``, whatever it holds) plus the pruner's
state, written atomically; loading gives the resizable network the checkpoint's shapes, then the state."""

from __future__ import annotations

from unittest import mock

import torch

from nnunet_pruning.adapter.checkpoints import atomic_torch_save

__all__ = ["PruningCheckpoints"]


class PruningCheckpoints:
    """Mixin of the pruning trainer (it reads ``self.pruner``; sets ``self._loaded_pruning_state``)."""

    # -- checkpoints --------------------------------------------------------------------------------------
    def save_checkpoint(self, filename: str) -> None:
        """nnU-Net's own checkpoint (its ``save_checkpoint``, whatever it holds) plus ``pruning`` (the pruner's
        state), written atomically: a run killed mid-write leaves the previous checkpoint, never half of one."""
        written = []
        with mock.patch.object(torch, "save", lambda obj, path, *a, **k: written.append((obj, path))):
            super().save_checkpoint(filename)  # builds the checkpoint and "saves" it into ``written``
        for checkpoint, path in written:
            checkpoint["pruning"] = self.pruner.state_dict() if self.pruner is not None else self._loaded_pruning_state
            atomic_torch_save(checkpoint, path)

    def load_checkpoint(self, filename_or_checkpoint) -> None:
        """nnU-Net's load (the resizable network takes the checkpoint's shapes), then the pruning state."""
        super().load_checkpoint(filename_or_checkpoint)
        self._loaded_pruning_state = self.loaded_checkpoint.get("pruning")
        if self.pruner is not None and self._loaded_pruning_state is not None:
            self.pruner.load_state_dict(self._loaded_pruning_state)
