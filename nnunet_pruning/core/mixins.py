"""A mixin given to one object, in place: the one way this package changes what a network (or a module of it)
does without changing its parameters, state dict or identity (``make_resizable``, ``use_runtime``,
``use_cuda_inference``)."""

from __future__ import annotations

from torch import nn

__all__ = ["with_mixin"]

_CLASSES: dict[tuple[type, type, str], type] = {}


def with_mixin(module: nn.Module, mixin: type, name: str | None = None) -> nn.Module:
    """Give ``module`` the class ``(mixin, its class)`` (made once per pair), in place; return it. Nothing happens
    when its class has ``mixin`` already. ``name``: the new class's name (default: the class's own, so messages and
    ``type(m).__name__`` stay nnU-Net's); ``isinstance`` with the old class stays true."""
    cls = type(module)
    if issubclass(cls, mixin):
        return module
    name = name or cls.__name__
    key = (cls, mixin, name)
    if key not in _CLASSES:
        _CLASSES[key] = type(name, (mixin, cls), {"__module__": mixin.__module__, "__qualname__": name})
    module.__class__ = _CLASSES[key]
    return module
