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

``nnUNet_pruning_backend`` chooses: ``auto`` (default), ``torch``, ``onnxruntime`` or ``openvino``;
``nnUNet_pruning_precision``: ``f32`` (default) or ``bf16`` (OpenVINO on CPUs with bf16 instructions, only when
OpenVINO is named). A bad value is a one-line error.

``auto`` chooses by measuring, per (weights, input shape, threads), inside the code that calls the network
(:class:`AutoChoice`): PyTorch runs first, then each installed runtime of :data:`runtimes.AUTO` (OpenVINO), each
for one warm-up call and :data:`TRIAL_CALLS` timed calls; a call's time is its own plus the caller's work until
the next call, when the next call (same weights and shape) follows within the call's own duration: nnU-Net's
predictor flips, weights and sums the tile there, and a runtime's worker threads can slow that work down; a
longer gap (a volume ended, a fold changed, other code ran between) is not the backend's and is left out. The
backend with the smallest median keeps the rest of the calls, and one line says what was chosen and the
times. With mirroring nnU-Net calls the network 8 times per 3D tile, so the trial is the first tile of a
volume on each backend. With no runtime installed ``auto`` is PyTorch, without a trial.

Why measure rather than name one (2-core CPU, docs/benchmarks/backends_*.json): OpenVINO predicted faster on
volumes of several tiles and for the stock and 20%-params networks (the demo's STAMP model at 64^3: 4.01x stock
nnU-Net, PyTorch 3.72x), but slower on a volume of one tile (2.53x vs 2.94x) and for the smallest
latency-pruned network on the 4-stage 64^3 plan (4.75x vs 5.56x): between calls the predictor's own PyTorch
work leaves OpenMP threads spinning beside the runtime's threads (with ``OMP_WAIT_POLICY=PASSIVE`` the
runtime's forward inside the predictor took its time alone, 41 instead of 57 ms, and PyTorch's got slower).
ONNX Runtime was slower than PyTorch for the pruned model at both sizes, so ``auto`` does not try it.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections import OrderedDict

import torch
from torch import nn

from nnunet_pruning.core import runtimes
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.mixins import TensorCaches, with_mixin

__all__ = ["RuntimeForward", "AutoChoice", "use_runtime", "runtime_setting", "BACKEND_VARIABLE",
           "PRECISION_VARIABLE", "CACHE_SIZE", "TRIAL_CALLS", "runtime_applies", "auto_candidates", "backend_in_use"]

BACKEND_VARIABLE = "nnUNet_pruning_backend"
PRECISION_VARIABLE = "nnUNet_pruning_precision"
CACHE_SIZE = 8
#: timed calls per backend in ``auto``'s trial (after one warm-up call each)
TRIAL_CALLS = 3
#: every value of ``nnUNet_pruning_backend``
SETTINGS = ("auto",) + runtimes.BACKENDS


def runtime_setting() -> tuple[str, str]:
    """``(backend, precision)`` from the environment (backend ``auto`` by default, kept as ``auto``: it is chosen
    per network and tile shape when the network runs); a bad value, a runtime that is not installed or bf16
    where it cannot run: one line."""
    backend = os.environ.get(BACKEND_VARIABLE, "auto").strip().lower() or "auto"
    precision = os.environ.get(PRECISION_VARIABLE, "f32").strip().lower() or "f32"
    if backend not in SETTINGS:
        raise PruningError(f"{BACKEND_VARIABLE}={os.environ[BACKEND_VARIABLE]!r} is not one of "
                           f"{', '.join(SETTINGS)}")
    if precision not in runtimes.PRECISIONS:
        raise PruningError(f"{PRECISION_VARIABLE}={os.environ[PRECISION_VARIABLE]!r} is not one of "
                           f"{', '.join(runtimes.PRECISIONS)}")
    if backend != "auto":
        runtimes.require(backend)
    if precision == "bf16" and (backend != "openvino" or not runtimes.bf16_supported()):
        raise PruningError(f"{PRECISION_VARIABLE}=bf16 needs {BACKEND_VARIABLE}=openvino on a CPU with bf16 "
                           f"instructions; unset it for full precision")
    return backend, precision


def auto_candidates() -> tuple[str, ...]:
    """What ``auto`` tries, in order: PyTorch, then the installed runtimes of :data:`runtimes.AUTO`."""
    return ("torch",) + tuple(b for b in runtimes.AUTO if runtimes.installed(b))


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


class AutoChoice:
    """``auto``'s trial for one (weights, input shape, threads): each candidate in turn runs one warm-up call and
    :data:`TRIAL_CALLS` timed calls (a call's seconds: see the module docstring); then the one with the smallest
    median runs every later call."""

    def __init__(self, candidates: tuple[str, ...], calls: int = TRIAL_CALLS):
        self.candidates, self.calls = tuple(candidates), calls
        self.seconds: dict[str, list[float]] = {c: [] for c in self.candidates}
        self.started = {c: 0 for c in self.candidates}  # calls begun per candidate, warm-up included
        self.chosen: str | None = self.candidates[0] if len(self.candidates) == 1 else None

    def backend(self) -> str:
        """The backend of the next call."""
        if self.chosen is not None:
            return self.chosen
        return next(c for c in self.candidates if len(self.seconds[c]) < self.calls)  # (a call not counted,
        # e.g. one that a fold change ended, is run again)

    def begin(self, backend: str) -> bool:
        """Record that a call on ``backend`` begins; whether its seconds count (not the warm-up call)."""
        counted = self.chosen is None and self.started[backend] >= 1
        self.started[backend] += 1
        return counted

    def record(self, backend: str, seconds: float) -> str | None:
        """A counted call's seconds; returns the chosen backend when this completes the trial."""
        self.seconds[backend].append(seconds)
        if self.chosen is None and all(len(v) >= self.calls for v in self.seconds.values()):
            self.chosen = min(self.candidates, key=self.median)
            return self.chosen
        return None

    def median(self, backend: str) -> float:
        return statistics.median(self.seconds[backend])

    def summary(self) -> str:
        """``torch 61.2 ms, openvino 45.0 ms``: each candidate's median."""
        return ", ".join(f"{c} {self.median(c) * 1e3:.1f} ms" for c in self.candidates)


class RuntimeForward(TensorCaches):
    """Mixin: ``forward`` through a cached ONNX Runtime / OpenVINO model in inference (module docstring)."""

    runtime_backend: str = "torch"
    runtime_precision: str = "f32"
    #: where ``auto`` reports its choices (a callable taking one line; default: stdout, like nnU-Net's own lines)
    runtime_report = None
    #: the list of the network's parameters and buffers (made once per change: it walks every module, ~0.5 ms)
    _tensor_caches = ("_tensor_list",)

    def __getstate__(self):
        """Copies and pickles leave the compiled models and ``auto``'s trials behind (a copy makes its own)."""
        state = dict(super().__getstate__())
        for name in ("_runners", "_choices", "_open_call"):
            state.pop(name, None)
        return state

    def _own_tensors(self) -> list[torch.Tensor]:
        tensors = self.__dict__.get("_tensor_list")
        if tensors is None:
            tensors = self.__dict__["_tensor_list"] = _tensors(self)
        return tensors

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        incoming = _signature([v for v in state_dict.values() if torch.is_tensor(v)])
        loaded = getattr(self, "_loaded_from", None)
        if (not assign and loaded is not None and loaded[0] == incoming
                and loaded[1] == _signature(self._own_tensors())):
            # the same tensors, unchanged, were loaded last and the network's own are unchanged since: nothing to
            # copy (nnU-Net's predictor loads the fold's weights again before every case)
            return nn.modules.module._IncompatibleKeys([], [])
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)  # TensorCaches: list made anew
        self._loaded_from = (incoming, _signature(self._own_tensors()))
        return result

    def _weights_key(self) -> tuple:
        own = _signature(self._own_tensors())
        loaded = getattr(self, "_loaded_from", None)
        if loaded is not None and loaded[1] == own:
            return ("loaded", loaded[0])
        return ("own", own)

    def runner(self, input_shape: tuple[int, ...], backend: str | None = None) -> runtimes.Runner:
        """The compiled model of the current weights for ``input_shape`` on ``backend`` (default: the network's),
        made on first use."""
        backend = backend or self.runtime_backend
        cache = self.__dict__.setdefault("_runners", OrderedDict())
        threads = torch.get_num_threads()
        key = (self._weights_key(), tuple(input_shape), threads, backend, self.runtime_precision)
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        model = runtimes.export_onnx(self, tuple(input_shape))
        cache[key] = runtimes.make_runner(backend, model, threads, self.runtime_precision)
        while len(cache) > CACHE_SIZE:
            cache.popitem(last=False)
        return cache[key]

    def auto_choices(self) -> dict[tuple, str | None]:
        """``auto``'s choices so far: ``{(input shape, threads): backend, or None while on trial}``."""
        return {key[1:]: choice.chosen for key, choice in self.__dict__.get("_choices", {}).items()}

    def _close_open_call(self, key, now: float) -> None:
        """Record the timed call that is still open: its own seconds plus the caller's work until this call,
        when this call has the same weights and shape and began within the open call's own duration; else
        (a volume ended, a fold or the tile shape changed, other code ran) the call's own seconds alone."""
        open_call = self.__dict__.pop("_open_call", None)
        if open_call is None:
            return
        open_key, choice, backend, started, ended = open_call
        call, gap = ended - started, now - ended
        chosen = choice.record(backend, call + gap if open_key == key and gap <= call else call)
        if chosen is not None:
            cache = self.__dict__.get("_runners", {})
            for runner_key in [k for k in cache if k[:3] == key and k[3] != chosen]:
                del cache[runner_key]  # the runtimes that lost keep no compiled model
            line = (f"nnunet-pruning: backend auto: {chosen} for input {'x'.join(map(str, key[1]))} "
                    f"({key[2]} threads; median per call, the caller's work between calls included: "
                    f"{choice.summary()})")
            (self.runtime_report or (lambda text: print(text, file=sys.stdout, flush=True)))(line)

    def _auto_forward(self, x):
        now = time.perf_counter()
        key = (self._weights_key(), tuple(x.shape), torch.get_num_threads())
        self._close_open_call(key, now)
        choices = self.__dict__.setdefault("_choices", OrderedDict())
        if key not in choices:
            choices[key] = AutoChoice(auto_candidates())
            while len(choices) > CACHE_SIZE:
                choices.popitem(last=False)
        choice = choices[key]
        backend = choice.backend()
        counted = choice.begin(backend)
        if backend != "torch":
            self.runner(tuple(x.shape), backend)  # made (export, compile) before the call's time starts
        started = time.perf_counter()
        out = self._run_on(backend, x)
        if counted:
            self._open_call = (key, choice, backend, started, time.perf_counter())
        return out

    def _run_on(self, backend: str, x):
        """One call on ``backend`` (a runtime's model of these weights and this shape is already made)."""
        return super().forward(x) if backend == "torch" else self.runner(tuple(x.shape), backend).forward(x)

    def forward(self, x, *args, **kwargs):
        if self.runtime_backend == "torch" or args or kwargs or not runtime_applies(self, x):
            return super().forward(x, *args, **kwargs)
        if self.runtime_backend == "auto":
            return self._auto_forward(x)
        return self.runner(tuple(x.shape)).forward(x)


def use_runtime(network: nn.Module, backend: str | None = None, precision: str | None = None) -> nn.Module:
    """Give ``network`` the :class:`RuntimeForward` subclass of its class, in place, and set its backend
    (default: the environment's, :func:`runtime_setting`); return it. ``backend="torch"`` keeps PyTorch;
    ``"auto"`` chooses by measuring (module docstring)."""
    if backend is None:
        backend, precision = runtime_setting()
    if backend != "auto":
        runtimes.require(backend)
    elif (precision or "f32") != "f32":
        raise PruningError("backend auto runs f32; name openvino for bf16")
    with_mixin(network, RuntimeForward)
    network.runtime_backend, network.runtime_precision = backend, precision or "f32"
    for name in ("_runners", "_choices", "_open_call"):
        network.__dict__.pop(name, None)
    return network


def backend_in_use(network: nn.Module) -> str:
    """What ran ``network``'s inference calls on the CPU: its backend; for ``auto`` with what it chose, e.g.
    ``auto: openvino`` (``auto: torch, openvino`` when tile shapes or folds chose differently, ``auto: on trial``
    before any choice)."""
    backend = getattr(network, "runtime_backend", "torch")
    if backend != "auto":
        return backend
    chosen = sorted({c for c in network.auto_choices().values() if c is not None})
    return f"auto: {', '.join(chosen) or 'on trial'}"
