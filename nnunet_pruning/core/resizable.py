"""Networks that take their shapes from the state dict they load: the path checkpoint -> shapes -> network.

nnU-Net rebuilds the *unpruned* network from the plans, then calls ``network.load_state_dict`` -- in
training (``--c``, ``--val``), in the predictor (once per fold, on one network object) and in our reports.
A resizable network first resizes every conv, transposed conv and norm to the incoming tensor shapes,
then loads strictly. Parameters keep their identity (``param.data`` is replaced), so an optimizer built
before the load still updates them, and nnU-Net's following ``optimizer.load_state_dict`` restores the
matching (pruned) momentum buffers.
"""

from __future__ import annotations

import torch
from torch import nn

from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.groups import supported_network, sync_cached_channels
from nnunet_pruning.core.mixins import with_mixin

__all__ = ["ResizableMixin", "make_resizable", "resize_to_state_dict", "check_state_dict_keys"]


def check_state_dict_keys(network: nn.Module, state_dict) -> None:
    """A one-line error when a state dict belongs to a different architecture (stages, class, blocks)."""
    own = set(network.state_dict().keys())
    incoming = set(state_dict.keys())
    if own != incoming:
        missing, unexpected = sorted(own - incoming), sorted(incoming - own)
        example = (missing or unexpected)[0]
        raise PruningError(f"checkpoint does not match this {type(network).__name__}: {len(missing)} missing and "
                           f"{len(unexpected)} unexpected tensors (e.g. {example}); it was trained with other plans "
                           f"or another trainer, use the matching -p/-tr/-c")


def resize_to_state_dict(network: nn.Module, state_dict) -> None:
    """Give every conv, transposed conv and norm of ``network`` the shapes found in ``state_dict``.

    Only shapes change (new tensors are uninitialised); load the values with ``load_state_dict`` after.
    Runs outside inference mode so that the network stays trainable even when called under
    ``torch.inference_mode()`` (as nnU-Net's predictor does).
    """
    with torch.inference_mode(False), torch.no_grad():
        for name, module in network.named_modules():
            prefix = f"{name}." if name else ""
            for pname, param in list(module.named_parameters(recurse=False)):
                incoming = state_dict.get(prefix + pname)
                if incoming is not None and tuple(incoming.shape) != tuple(param.shape):
                    param.data = torch.empty(incoming.shape, dtype=param.dtype, device=param.device)
                    param.grad = None
            for bname, buffer in list(module.named_buffers(recurse=False)):
                incoming = state_dict.get(prefix + bname)
                if buffer is not None and incoming is not None and tuple(incoming.shape) != tuple(buffer.shape):
                    module._buffers[bname] = torch.empty(incoming.shape, dtype=buffer.dtype, device=buffer.device)
        sync_cached_channels(network)


class ResizableMixin:
    """``load_state_dict`` that resizes the network to the incoming shapes first (see module docstring)."""

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        if strict:
            check_state_dict_keys(self, state_dict)
        resize_to_state_dict(self, state_dict)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def make_resizable(network: nn.Module) -> nn.Module:
    """Turn a PlainConvUNet / ResidualEncoderUNet into its resizable subclass, in place; return it.

    The object, its modules and parameters stay the same; only its class gains :class:`ResizableMixin`
    (``isinstance(network, PlainConvUNet)`` stays true).
    """
    supported_network(network)
    return with_mixin(network, ResizableMixin, f"Resizable{type(network).__name__}")
