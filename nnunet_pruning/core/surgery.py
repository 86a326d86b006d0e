"""Remove channels from a :class:`~nnunet_pruning.core.groups.ChannelGroup`, physically and exactly.

Parameters are edited in place (``param.data`` is replaced by the kept slice), so every ``nn.Parameter``
object survives: optimizers keep pointing at the right tensors, and their per-parameter state
(momentum buffers, Adam moments) is sliced the same way here. Gradients are sliced too.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch import nn

from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.groups import ChannelGroup, in_channels, is_transposed, sync_cached_channels

__all__ = ["remove_channels", "mask_channels", "consumer_indices"]


def _slice_param(param: nn.Parameter, dim: int, index: torch.Tensor, optimizer) -> None:
    index = index.to(param.device)
    param.data = param.data.index_select(dim, index).clone()
    if param.grad is not None:
        param.grad = param.grad.index_select(dim, index).clone()
    if optimizer is not None:
        state = optimizer.state.get(param)
        if state:
            for key, value in list(state.items()):
                if torch.is_tensor(value) and value.dim() > dim and value.shape[dim] != param.shape[dim]:
                    state[key] = value.index_select(dim, index.to(value.device)).clone()


def _slice_norm(norm: nn.Module, index: torch.Tensor, optimizer) -> None:
    for name, param in norm.named_parameters(recurse=False):
        _slice_param(param, 0, index, optimizer)
    for name, buffer in list(norm.named_buffers(recurse=False)):
        if buffer is not None and buffer.dim() == 1:
            norm._buffers[name] = buffer.index_select(0, index.to(buffer.device)).clone()


def consumer_indices(group: ChannelGroup, channels: Sequence[int]) -> list[tuple[nn.Module, list[int]]]:
    """For each consumer conv, the input positions that read ``channels`` of the group."""
    result = []
    for consumer in group.consumers:
        offset = consumer.offset()
        result.append((consumer.conv, [offset + c for c in channels]))
    return result


def _validate(group: ChannelGroup, channels: Iterable[int], min_width: int) -> list[int]:
    width = group.width
    chosen = sorted({int(c) for c in channels})
    if not chosen:
        raise PruningError(f"no channels given to remove from {group.name}; pass at least one channel index")
    if chosen[0] < 0 or chosen[-1] >= width:
        raise PruningError(f"channel index out of range for {group.name} (width {width}): {chosen}; use indices "
                           f"0..{width - 1}")
    if min_width < 1:
        raise PruningError(f"minimum width must be >= 1, not {min_width}")
    if width - len(chosen) < min_width:
        raise PruningError(f"removing {len(chosen)} of {width} channels from {group.name} would leave "
                           f"{width - len(chosen)}, below the minimum width {min_width}; remove at most "
                           f"{max(width - min_width, 0)}")
    return chosen


@torch.no_grad()
def remove_channels(network: nn.Module, group: ChannelGroup, channels: Iterable[int], optimizer=None,
                    min_width: int = 1) -> list[int]:
    """Remove ``channels`` of ``group`` from ``network``; return the kept channel indices.

    Args:
        network: the U-Net the group was found in (its cached channel counts are updated).
        group: from :func:`~nnunet_pruning.core.groups.find_groups`; it stays valid after the removal.
        channels: indices into the group's current channels.
        optimizer: if given, its per-parameter state is sliced with the parameters.
        min_width: the group may not shrink below this many channels.

    Raises:
        PruningError: bad indices, or the removal would go below ``min_width``; nothing is changed.
    """
    removed = set(_validate(group, channels, min_width))
    width = group.width
    keep = [c for c in range(width) if c not in removed]
    keep_index = torch.tensor(keep, dtype=torch.long)
    # Compute every consumer's input selection before touching anything: offsets read current widths.
    selections = []
    for consumer in group.consumers:
        total, offset = in_channels(consumer.conv), consumer.offset()
        selection = list(range(offset)) + [offset + c for c in keep] + list(range(offset + width, total))
        selections.append((consumer.conv, torch.tensor(selection, dtype=torch.long)))
    for conv, selection in selections:
        _slice_param(conv.weight, 0 if is_transposed(conv) else 1, selection, optimizer)
    for producer in group.producers:
        conv = producer.conv
        _slice_param(conv.weight, 1 if is_transposed(conv) else 0, keep_index, optimizer)
        if conv.bias is not None:
            _slice_param(conv.bias, 0, keep_index, optimizer)
        if producer.norm is not None:
            _slice_norm(producer.norm, keep_index, optimizer)
    sync_cached_channels(network)
    return keep


@torch.no_grad()
def mask_channels(group: ChannelGroup, channels: Iterable[int]) -> None:
    """Zero every consumer weight that reads ``channels``: the masked reference of a removal.

    After this, removing the same channels does not change the network's outputs.
    """
    chosen = sorted({int(c) for c in channels})
    for conv, positions in consumer_indices(group, chosen):
        index = torch.tensor(positions, dtype=torch.long, device=conv.weight.device)
        conv.weight.data.index_fill_(0 if is_transposed(conv) else 1, index, 0.0)
