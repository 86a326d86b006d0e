"""Inference through ONNX Runtime or OpenVINO inside PyTorch code that calls ``network(x)``: nnU-Net's predictor.

:func:`use_runtime` gives a network a subclass (in place, like :func:`~nnunet_pruning.core.resizable.make_resizable`)
whose forward, in inference only, runs a compiled model of the network's current weights for that input
shape; the state dict, the parameters and every other use stay PyTorch's. It applies when all hold:
``torch.inference_mode()`` is on (nnU-Net's sliding window; training's validation steps run under ``no_grad``
and keep PyTorch), the network is in eval mode without deep supervision, and the input is a float32 CPU tensor
outside autocast, ``torch.compile`` and export.

Compiled models are cached per (weights, input shape, threads): nnU-Net loads each fold's state dict before
each case, so a model is keyed by the state dict it was loaded from (the tensors' identity and version) as
long as the network's own parameters are unchanged since; any other change to them (an optimizer step, a
pruning step) makes a new key. At most :data:`CACHE_SIZE` models are kept (each holds a copy of the weights:
an ensemble of five stock 3D folds costs about five times a checkpoint's weights, once).

``nnUNet_pruning_backend`` chooses: ``torch`` (default), ``onnxruntime``, ``openvino``, or ``auto`` (OpenVINO
when installed, else PyTorch); ``nnUNet_pruning_precision``: ``f32`` (default) or ``bf16`` (OpenVINO on CPUs
with bf16 instructions). A bad value is a one-line error.

Why PyTorch is the default (measured on a 2-core CPU, docs/benchmarks/backends_demo_plans_*.json): on volumes
of several tiles OpenVINO predicts faster (the demo's STAMP model at 64^3: 4.01x stock nnU-Net, PyTorch 3.72x),
but on a volume of one tile it is slower (2.53x vs 2.94x): between tiles the predictor's own PyTorch work leaves
OpenMP threads spinning beside the runtime's threads (with ``OMP_WAIT_POLICY=PASSIVE`` the runtime's forward
inside the predictor took its time alone, 41 instead of 57 ms, and PyTorch's got slower). ONNX Runtime was
slower than PyTorch for the pruned model at both sizes.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import torch
from torch import nn

from nnunet_pruning.core import runtimes
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.mixins import with_mixin

__all__ = ["RuntimeForward", "use_runtime", "runtime_setting", "BACKEND_VARIABLE", "PRECISION_VARIABLE",
           "CACHE_SIZE", "runtime_applies"]

BACKEND_VARIABLE = "nnUNet_pruning_backend"
PRECISION_VARIABLE = "nnUNet_pruning_precision"
CACHE_SIZE = 8


def runtime_setting() -> tuple[str, str]:
    """``(backend, precision)`` from the environment: ``auto`` resolved to OpenVINO when installed, else torch;
    a bad value, a runtime that is not installed or bf16 where it cannot run: one line."""
    backend = os.environ.get(BACKEND_VARIABLE, "torch").strip().lower() or "torch"
    precision = os.environ.get(PRECISION_VARIABLE, "f32").strip().lower() or "f32"
    if backend not in ("auto",) + runtimes.BACKENDS:
        raise PruningError(f"{BACKEND_VARIABLE}={os.environ[BACKEND_VARIABLE]!r} is not one of auto, "
                           f"{', '.join(runtimes.BACKENDS)}")
    if precision not in runtimes.PRECISIONS:
        raise PruningError(f"{PRECISION_VARIABLE}={os.environ[PRECISION_VARIABLE]!r} is not one of "
                           f"{', '.join(runtimes.PRECISIONS)}")
    backend = runtimes.fastest_installed() if backend == "auto" else backend
    runtimes.require(backend)
    if precision == "bf16" and (backend != "openvino" or not runtimes.bf16_supported()):
        raise PruningError(f"{PRECISION_VARIABLE}=bf16 needs {BACKEND_VARIABLE}=openvino on a CPU with bf16 "
                           f"instructions; unset it for full precision")
    return backend, precision


def runtime_applies(network: nn.Module, x) -> bool:
    """Whether this call of ``network(x)`` runs on the runtime (see the module docstring)."""
    decoder = getattr(network, "decoder", None)
    return (not torch.compiler.is_compiling() and torch.is_tensor(x) and x.device.type == "cpu"
            and x.dtype == torch.float32
            and torch.is_inference_mode_enabled() and not network.training
            and not getattr(decoder, "deep_supervision", False) and not torch.is_autocast_enabled("cpu")
            and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export())


def _tensors(module: nn.Module):
    return [t for t in (*module.parameters(), *module.buffers())]


def _signature(tensors) -> tuple:
    return tuple((t.data_ptr(), t._version, tuple(t.shape)) for t in tensors)


class RuntimeForward:
    """Mixin: ``forward`` through a cached ONNX Runtime / OpenVINO model in inference (module docstring)."""

    runtime_backend: str = "torch"
    runtime_precision: str = "f32"

    def __getstate__(self):
        """Copies and pickles leave the compiled models behind (a copy compiles its own when it first runs)."""
        state = dict(super().__getstate__())
        state.pop("_runners", None)
        return state

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        incoming = _signature([v for v in state_dict.values() if torch.is_tensor(v)])
        loaded = getattr(self, "_loaded_from", None)
        if not assign and loaded is not None and loaded[0] == incoming and loaded[1] == _signature(_tensors(self)):
            # the same tensors, unchanged, were loaded last and the network's own are unchanged since: nothing to
            # copy (nnU-Net's predictor loads the fold's weights again before every case)
            return nn.modules.module._IncompatibleKeys([], [])
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self._loaded_from = (incoming, _signature(_tensors(self)))
        return result

    def _weights_key(self) -> tuple:
        own = _signature(_tensors(self))
        loaded = getattr(self, "_loaded_from", None)
        if loaded is not None and loaded[1] == own:
            return ("loaded", loaded[0])
        return ("own", own)

    def runner(self, input_shape: tuple[int, ...]) -> runtimes.Runner:
        """The compiled model of the current weights for ``input_shape``, made on first use."""
        cache = self.__dict__.setdefault("_runners", OrderedDict())
        threads = torch.get_num_threads()
        key = (self._weights_key(), tuple(input_shape), threads, self.runtime_backend, self.runtime_precision)
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        model = runtimes.export_onnx(self, tuple(input_shape))
        cache[key] = runtimes.make_runner(self.runtime_backend, model, threads, self.runtime_precision)
        while len(cache) > CACHE_SIZE:
            cache.popitem(last=False)
        return cache[key]

    def forward(self, x, *args, **kwargs):
        if self.runtime_backend == "torch" or args or kwargs or not runtime_applies(self, x):
            return super().forward(x, *args, **kwargs)
        return self.runner(tuple(x.shape)).forward(x)


def use_runtime(network: nn.Module, backend: str | None = None, precision: str | None = None) -> nn.Module:
    """Give ``network`` the :class:`RuntimeForward` subclass of its class, in place, and set its backend
    (default: the environment's, :func:`runtime_setting`); return it. ``backend="torch"`` keeps PyTorch."""
    if backend is None:
        backend, precision = runtime_setting()
    runtimes.require(backend)
    with_mixin(network, RuntimeForward)
    network.runtime_backend, network.runtime_precision = backend, precision or "f32"
    network.__dict__.pop("_runners", None)
    return network
