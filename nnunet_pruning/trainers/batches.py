"""Synthetic training batches shaped like a trainer's data loader output (benchmarks and tests).

A batch has the plans' batch size and patch size, random images, and random labels with deep-supervision
targets at the trainer's own scales (nearest-neighbour downsampled, as nnU-Net's transforms do).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["synthetic_batch"]


def synthetic_batch(trainer, seed: int = 0) -> dict:
    """``{"data": ..., "target": ...}`` for ``trainer.train_step`` (after ``trainer.initialize()``)."""
    generator = torch.Generator().manual_seed(seed)
    patch = list(trainer.configuration_manager.patch_size)
    batch = trainer.configuration_manager.batch_size
    data = torch.randn((batch, trainer.num_input_channels, *patch), generator=generator)
    classes = trainer.label_manager.num_segmentation_heads
    seg = torch.randint(0, classes, (batch, 1, *patch), generator=generator).float()
    scales = trainer._get_deep_supervision_scales() or [[1.0] * len(patch)]
    target = [F.interpolate(seg, size=[round(p * s) for p, s in zip(patch, scale)], mode="nearest")
              for scale in scales]
    return {"data": data, "target": target if trainer.enable_deep_supervision else target[0]}
