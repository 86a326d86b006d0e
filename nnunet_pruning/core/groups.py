"""Which channels are coupled in dynamic-network-architectures' U-Nets (pure torch, no nnU-Net).

A :class:`ChannelGroup` is one set of channels that must be removed together: the output channels of its
*producers* (convs or transposed convs, each with its norm) and the input channels of every *consumer*
that reads them. Supported: ``PlainConvUNet`` and ``ResidualEncoderUNet`` (``BasicBlockD``), 2D or 3D,
any number of stages, deep supervision on or off.

Never prunable: the network's input channels and the segmentation layers' outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from nnunet_pruning.core.errors import PruningError

__all__ = ["Producer", "Consumer", "ChannelGroup", "GroupHooks", "find_groups", "is_transposed", "out_channels",
           "in_channels", "sync_cached_channels", "supported_network"]


def is_transposed(conv: nn.Module) -> bool:
    return isinstance(conv, nn.modules.conv._ConvTransposeNd)


def out_channels(conv: nn.Module) -> int:
    """Output channels read off the weight (dim 0 for convs, dim 1 for transposed convs)."""
    return int(conv.weight.shape[1] * conv.groups if is_transposed(conv) else conv.weight.shape[0])


def in_channels(conv: nn.Module) -> int:
    return int(conv.weight.shape[0] if is_transposed(conv) else conv.weight.shape[1] * conv.groups)


@dataclass(eq=False)
class Producer:
    """A conv whose output channels form the group, and the norm that follows it (or None)."""

    conv: nn.Module
    norm: nn.Module | None = None


def _zero() -> int:
    return 0


@dataclass(eq=False)
class Consumer:
    """A conv reading the group's channels at input positions ``offset() + k``.

    ``offset`` is a function because it can change: the decoder reads ``cat(upsampled, skip)``, so the
    skip starts after the transposed conv's *current* output width.
    """

    conv: nn.Module
    offset: Callable[[], int] = _zero


@dataclass(eq=False)
class ChannelGroup:
    """Channels removed together.

    Attributes:
        name: the module path of the first producer's block, e.g. ``encoder.stages.2.0.convs.1`` or, for
            a ResEnc residual stream, ``encoder.stages.2.stream``.
        level: resolution level of the channels (0 = full resolution).
        producers: convs writing these channels (more than one for a residual stream).
        consumers: convs reading them.
        activations: modules whose *outputs* carry these channels as the network computes them (conv
            blocks after their nonlinearity, transposed convs, residual blocks after the addition): where
            importance scores are measured and channel dropout is applied.
    """

    name: str
    level: int
    producers: list[Producer] = field(default_factory=list)
    consumers: list[Consumer] = field(default_factory=list)
    activations: list[nn.Module] = field(default_factory=list)

    @property
    def width(self) -> int:
        return out_channels(self.producers[0].conv)

    def __repr__(self) -> str:
        return f"ChannelGroup({self.name!r}, width={self.width}, producers={len(self.producers)}, " \
               f"consumers={len(self.consumers)})"


class GroupHooks:
    """Forward hooks on every group's activation modules; subclasses define ``_hook(group_name)``."""

    def __init__(self, groups: list[ChannelGroup]):
        self.groups = list(groups)
        self._handles = []

    def _hook(self, name: str):
        raise NotImplementedError

    def attach(self) -> None:
        self.detach()
        for group in self.groups:
            for module in group.activations:
                self._handles.append(module.register_forward_hook(self._hook(group.name)))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def supported_network(network: nn.Module) -> str:
    """``"plain"`` or ``"resenc"``; a one-line error for anything else."""
    from dynamic_network_architectures.architectures.unet import PlainConvUNet, ResidualEncoderUNet

    if isinstance(network, PlainConvUNet):
        return "plain"
    if isinstance(network, ResidualEncoderUNet):
        return "resenc"
    raise PruningError(f"{type(network).__name__} is not a U-Net nnunet_pruning can prune; use nnU-Net plans "
                       f"with PlainConvUNet or ResidualEncoderUNet")


def _unwrap_stage(stage: nn.Module) -> nn.Module:
    """Encoder stages may be ``Sequential(pool, blocks)`` when pooling is not done by strided convs."""
    if hasattr(stage, "convs") or hasattr(stage, "blocks"):
        return stage
    return stage[-1]


class _Builder:
    def __init__(self, network: nn.Module):
        self.groups: list[ChannelGroup] = []
        self.names = {module: name for name, module in network.named_modules()}

    def chain(self, current: ChannelGroup | None, conv_block: nn.Module, level: int,
              name: str | None = None) -> ChannelGroup:
        """``conv_block`` reads ``current`` (None: the network input) and starts a new group."""
        if current is not None:
            current.consumers.append(Consumer(conv_block.conv))
        group = ChannelGroup(name or self.names[conv_block], level,
                             [Producer(conv_block.conv, getattr(conv_block, "norm", None))],
                             activations=[conv_block])
        self.groups.append(group)
        return group


def _residual_blocks(builder: _Builder, current: ChannelGroup | None, stage: nn.Module, level: int):
    from dynamic_network_architectures.building_blocks.residual import BasicBlockD

    prefix = builder.names[stage]
    for b, block in enumerate(stage.blocks):
        if not isinstance(block, BasicBlockD) or getattr(block, "apply_se", False):
            raise PruningError(f"{prefix}.blocks.{b} is a {type(block).__name__}"
                               f"{' with squeeze-excitation' if getattr(block, 'apply_se', False) else ''}; "
                               f"only BasicBlockD residual blocks (nnU-Net's ResEnc plans) can be pruned")
        builder.chain(current, block.conv1, level).consumers.append(Consumer(block.conv2.conv))
        projection = block.skip[-1] if isinstance(block.skip, nn.Sequential) and len(block.skip) and \
            hasattr(block.skip[-1], "conv") else None
        if projection is None:  # identity skip: conv2 writes into the stream it reads
            if current is None:
                raise PruningError(f"{prefix}.blocks.{b} adds the network input to its output; such a U-Net "
                                   f"cannot be pruned")
            current.producers.append(Producer(block.conv2.conv, block.conv2.norm))
        else:
            stream = builder.chain(current, projection, level, name=f"{prefix}.stream")
            stream.producers.append(Producer(block.conv2.conv, block.conv2.norm))
            stream.activations = []  # the projection is added inside the block: the block output carries it
            current = stream
        current.activations.append(block)
    return current


def find_groups(network: nn.Module) -> list[ChannelGroup]:
    """Every prunable channel group of a PlainConvUNet or ResidualEncoderUNet, in forward order."""
    kind = supported_network(network)
    builder = _Builder(network)
    encoder, decoder = network.encoder, network.decoder
    current: ChannelGroup | None = None
    if kind == "resenc" and encoder.stem is not None:
        for block in encoder.stem.convs:
            current = builder.chain(current, block, 0)
    skips: list[ChannelGroup] = []
    for s, stage in enumerate(encoder.stages):
        stage = _unwrap_stage(stage)
        if kind == "plain":
            for block in stage.convs:
                current = builder.chain(current, block, s)
        else:
            before = current
            current = _residual_blocks(builder, current, stage, s)
            if current is before and current is not None and ".stream" not in current.name:
                current.name = f"{builder.names[stage]}.stream"  # the stem joined stage s's identity stream
        skips.append(current)

    n_stages = len(skips)
    below = skips[-1]
    for d, (transpconv, stage) in enumerate(zip(decoder.transpconvs, decoder.stages)):
        level = n_stages - 2 - d
        below.consumers.append(Consumer(transpconv))
        up = ChannelGroup(builder.names[transpconv], level, [Producer(transpconv, None)], activations=[transpconv])
        builder.groups.append(up)
        up.consumers.append(Consumer(stage.convs[0].conv))
        skips[level].consumers.append(Consumer(stage.convs[0].conv, offset=lambda t=transpconv: out_channels(t)))
        current = None
        for block in stage.convs:
            current = builder.chain(current, block, level)
        current.consumers.append(Consumer(decoder.seg_layers[d]))
        below = current
    return builder.groups


def sync_cached_channels(network: nn.Module) -> None:
    """Make every cached channel count agree with the weight shapes (after surgery or a resize), and tell the
    network its tensors were replaced (``tensors_replaced``, where it has it)."""
    from dynamic_network_architectures.building_blocks.residual import BasicBlockD, StackedResidualBlocks
    from dynamic_network_architectures.building_blocks.simple_conv_blocks import (ConvDropoutNormReLU,
                                                                                  StackedConvBlocks)

    for module in network.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            module.in_channels, module.out_channels = in_channels(module), out_channels(module)
        elif isinstance(module, nn.modules.batchnorm._NormBase) and module.weight is not None:
            module.num_features = int(module.weight.shape[0])
        elif isinstance(module, nn.modules.batchnorm._NormBase) and module.running_mean is not None:
            module.num_features = int(module.running_mean.shape[0])
    for module in network.modules():  # blocks after their convs
        if isinstance(module, ConvDropoutNormReLU):
            module.input_channels, module.output_channels = module.conv.in_channels, module.conv.out_channels
        elif isinstance(module, BasicBlockD):
            module.input_channels = module.conv1.conv.in_channels
            module.output_channels = module.conv2.conv.out_channels
    for module in network.modules():
        if isinstance(module, StackedConvBlocks):
            module.output_channels = module.convs[-1].output_channels
        elif isinstance(module, StackedResidualBlocks):
            module.output_channels = module.blocks[-1].output_channels
    encoder = getattr(network, "encoder", None)
    if encoder is not None and hasattr(encoder, "output_channels"):
        # a new list: the old one may be the plans' own features_per_stage list
        encoder.output_channels = [int(_unwrap_stage(stage).output_channels) for stage in encoder.stages]
    replaced = getattr(network, "tensors_replaced", None)
    if replaced is not None:  # what caches where the tensors lie (core/cuda_inference.py's CUDA graphs) reads anew
        replaced()
