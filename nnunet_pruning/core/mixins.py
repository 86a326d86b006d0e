"""A mixin given to one object, in place: the one way this package changes what a network (or a module of it)
does without changing its parameters, state dict or identity (``make_resizable``, ``use_runtime``,
``use_cuda_inference``)."""

from __future__ import annotations

from torch import nn

__all__ = ["with_mixin", "TensorCaches"]

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


class TensorCaches:
    """Base of a mixin that caches something about where a network's tensors lie (names in ``__dict__``, listed in
    each class's ``_tensor_caches``): :meth:`tensors_replaced` drops them all, after a move (``.to``/``.half``) or
    a load (here), and after surgery or a resize (``core.groups.sync_cached_channels`` calls it). Reading the tensors on every call instead walks every module (~0.5 ms for a
    6-stage U-Net)."""

    _tensor_caches: tuple[str, ...] = ()

    def _cache_names(self):
        for cls in type(self).__mro__:
            yield from cls.__dict__.get("_tensor_caches", ())

    def tensors_replaced(self) -> None:
        for name in self._cache_names():
            self.__dict__.pop(name, None)

    def __getstate__(self):
        """A copy or a pickle has tensors of its own: it leaves the caches behind."""
        state = dict(super().__getstate__())
        for name in self._cache_names():
            state.pop(name, None)
        return state

    def _apply(self, fn, *args, **kwargs):
        result = super()._apply(fn, *args, **kwargs)
        self.tensors_replaced()
        return result

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self.tensors_replaced()  # a resize (folds pruned to other shapes) or ``assign`` puts new tensors in
        return result
