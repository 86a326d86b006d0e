"""Identical pruning decisions on every ``torch.distributed`` rank (multi-GPU training).

Every rank runs the same :class:`~nnunet_pruning.core.pruner.Pruner`; :class:`RankSync` makes them agree:

- before a step, all ranks compare their group widths and stop with a one-line error if they differ
  (a desynchronised rank must never reach a collective with other tensor sizes: that hangs or crashes);
- Taylor scores are averaged over ranks (each rank saw other batches);
- the random generator of random-largest starts from rank 0's state;
- after choosing, all ranks compare their selections before any surgery.

Pure ``torch.distributed``: tested with the gloo backend on CPU processes.
"""

from __future__ import annotations

import hashlib
import json
import random

import torch
import torch.distributed as dist

from nnunet_pruning.core.errors import PruningError

__all__ = ["RankSync"]


class RankSync:
    """Synchronises pruning across the ranks of the default process group."""

    def __init__(self):
        if not (dist.is_available() and dist.is_initialized()):
            raise PruningError("RankSync needs an initialised torch.distributed process group; call "
                               "torch.distributed.init_process_group first")
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()

    def _agree(self, what: str, payload) -> None:
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        digests = [None] * self.world_size
        dist.all_gather_object(digests, digest)
        differing = [r for r, d in enumerate(digests) if d != digests[0]]
        if differing:
            raise PruningError(f"ranks disagree on the {what} (rank 0 vs rank(s) {differing}); every rank must "
                               f"load the same checkpoint and run the same pruning trainer and settings")

    def check_widths(self, widths: dict[str, int]) -> None:
        self._agree("network's channel widths", widths)

    def check_selection(self, selection: dict[str, list[int]]) -> None:
        self._agree("channels to remove", selection)

    def average_scores(self, scores: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        names = list(scores)
        flat = torch.cat([scores[n].to(torch.float64).flatten() for n in names]) if names else torch.zeros(0)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= self.world_size
        result, start = {}, 0
        for name in names:
            n = scores[name].numel()
            result[name] = flat[start:start + n].clone()
            start += n
        return result

    def broadcast_rng(self, rng: random.Random) -> None:
        state = [rng.getstate() if self.rank == 0 else None]
        dist.broadcast_object_list(state, src=0)
        rng.setstate(state[0])
