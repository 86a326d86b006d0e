"""How channels are scored: first-order Taylor (STAMP), per-group normalisation, FLOPs and parameter costs.

The Taylor score of channel c is ``mean over (batch, space) of a * dL/da`` for the activation ``a`` that
carries the channel, summed over the batches seen since the last reset. It is collected by hooks during
the normal training iterations (no extra passes): forward hooks on each group's activation modules
register a gradient hook on their output. The running sums stay on the training device; they are read
(one copy) only at a pruning step or a checkpoint.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from nnunet_pruning.core.groups import ChannelGroup, GroupHooks, in_channels, out_channels

__all__ = ["TaylorScorer", "normalise", "conv_voxels", "channel_costs"]


class TaylorScorer(GroupHooks):
    """Accumulates first-order Taylor scores for every group while the network trains.

    Args:
        groups: the network's channel groups.
        grad_scale: returns the current loss scale (GradScaler) so scaled gradients are divided back.
        absolute_per_batch: sum ``|term|`` of every batch (Molchanov et al.) instead of the signed terms
            (the STAMP reference, which takes the absolute value only when it ranks).
    """

    def __init__(self, groups: Sequence[ChannelGroup], grad_scale: Callable[[], float] = lambda: 1.0,
                 absolute_per_batch: bool = False):
        super().__init__(groups)
        self.grad_scale = grad_scale
        self.absolute_per_batch = absolute_per_batch
        self.scores: dict[str, torch.Tensor] = {}
        self.reset()

    def reset(self) -> None:
        self.scores = {g.name: torch.zeros(g.width, dtype=torch.float64) for g in self.groups}

    def _hook(self, name: str):
        def hook(module, inputs, output):
            if not (torch.is_grad_enabled() and module.training and output.requires_grad):
                return
            activation = output.detach()

            def grad_hook(grad):
                dims = [0] + list(range(2, grad.dim()))
                product = (activation.float() * grad.float()).mean(dim=dims)
                if self.absolute_per_batch:
                    product = product.abs()
                score = self.scores[name]
                if score.device != product.device:  # scores live where the network trains: no copy, no sync
                    score = score.to(product.device, _score_dtype(product.device))
                self.scores[name] = score + product.to(score.dtype) / self.grad_scale()

            output.register_hook(grad_hook)
        return hook

    def keep(self, name: str, kept: Sequence[int]) -> None:
        """After a removal: keep the scores of the surviving channels."""
        self.scores[name] = self.scores[name][list(kept)]

    def state_dict(self) -> dict:
        """The running scores on the CPU in float64 (the only place they are copied off the device)."""
        return {k: v.detach().to("cpu", torch.float64).clone() for k, v in self.scores.items()}

    def load_state_dict(self, state: dict) -> None:
        self.scores = {k: v.to(torch.float64).cpu() for k, v in state.items()}


def _score_dtype(device: torch.device) -> torch.dtype:
    """float64 where the device has it (Apple's MPS does not)."""
    return torch.float32 if device.type == "mps" else torch.float64


def normalise(scores: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """STAMP's per-group normalisation: ``|s| / ||s||_2`` (n equally useful channels get 1/sqrt(n) each)."""
    result = {}
    for name, score in scores.items():
        magnitude = score.abs()
        norm = magnitude.norm()
        result[name] = magnitude / norm if norm > 0 else torch.full_like(magnitude, 1.0 / max(1, len(score)) ** 0.5)
    return result


def conv_voxels(network: nn.Module, input_shape: Sequence[int]) -> dict[nn.Module, int]:
    """Per conv module: voxels of its output (transposed convs: of its input), for one sample of
    ``input_shape`` (``(channels, *spatial)``), as the network predicts (deep supervision off, so the unused
    segmentation heads are absent: they cost nothing at inference). See :func:`~nnunet_pruning.core.measure.conv_voxels`."""
    from nnunet_pruning.core.measure import conv_voxels as voxels_by_name

    modules = dict(network.named_modules())
    return {modules[name]: v for name, v in voxels_by_name(network, input_shape[0], input_shape[1:]).items()}


def channel_costs(group: ChannelGroup, voxels: dict[nn.Module, int] | None = None) -> float:
    """What one channel of ``group`` costs: parameters, or FLOPs (2 per multiply-add) when ``voxels`` given.

    Sums the producer's per-output-channel slice (+ bias, norm affine) and every consumer's per-input-
    channel slice at the current shapes.
    """
    total = 0.0
    for producer in group.producers:
        conv = producer.conv
        per_channel = conv.weight.numel() / out_channels(conv)
        if voxels is None:
            total += per_channel + (1 if conv.bias is not None else 0)
            if producer.norm is not None and getattr(producer.norm, "weight", None) is not None:
                total += 2
        else:
            total += 2 * per_channel * voxels.get(conv, 0)
    for consumer in group.consumers:
        conv = consumer.conv
        per_channel = conv.weight.numel() / in_channels(conv)
        total += per_channel if voxels is None else 2 * per_channel * voxels.get(conv, 0)  # 0: not run
    return total
