"""GPU inference of the networks this package builds: a norm whose cost scales with the channels, and each tile
shape's forward replayed as one CUDA graph (issue 21; measured: ../shared/reference/speed-facts.md, "GPU").

Measured on an H200 (6-stage U-Net, 128^3, fp16 autocast, batch 1): cuDNN's ``InstanceNorm3d`` kernel
parallelises over N x C instances, so at full resolution a thinner layer takes the same time, and a pruned net
is launch-bound (5.2 ms of kernels in an 11.5 ms forward). A norm computed as ``torch.var_mean`` over the
voxels plus the affine, and the forward replayed as one CUDA graph, made the network with every group cut 75%
2.6x faster than eager stock (5.19 vs 13.47 ms), outputs equal within fp16 rounding. NOT yet measured with this
module: no GPU was lent to the session that wrote it; the tests run on the CPU (where nothing changes).

:func:`use_cuda_inference` swaps classes in place (state dict unchanged, like :mod:`~nnunet_pruning.core.onednn`):
- every ``nn.InstanceNorm2d/3d`` without running statistics becomes :class:`VoxelParallelInstanceNorm`: on a
  CUDA input in eval mode it normalises with :func:`instance_norm_over_voxels`; elsewhere it is PyTorch's;
- the network gets :class:`GraphedForward`: on a CUDA input, in ``torch.inference_mode`` (nnU-Net's predictor),
  eval mode, without deep supervision and outside ``torch.compile``, the forward of each (tile shape, dtype,
  autocast state) is captured once and replayed; the output is a copy (nnU-Net's mirroring calls the network
  again before it adds the first result). A graph reads the parameters where they lie: loading another fold of
  the same shapes (``load_state_dict`` copies in place) reuses it, a fold pruned to other shapes captures anew;
  autocast's fp16 weight casts are captured too (:func:`autocast_cache_off`), so they follow the weights.
  At most :data:`MAX_GRAPHS` graphs are kept; each holds the activations of one forward pass of its shape: a
  capture prints one line with the GPU memory it reserved (``graph_report``, default stdout).
Training (gradients on) never captures. ``nnUNet_pruning_cuda_graphs=1`` turns both on; the default is OFF until
a GPU session has measured and checked this module on a real card (the tests here run its logic on the CPU,
the capture with a stand-in for ``torch.cuda``).
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict

import torch
from torch import nn

from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.mixins import TensorCaches, with_mixin

__all__ = ["instance_norm_over_voxels", "VoxelParallelInstanceNorm", "VoxelParallelInstanceNorm2d",
           "VoxelParallelInstanceNorm3d", "GraphedForward", "use_cuda_inference",
           "cuda_inference_enabled", "autocast_cache_off", "VARIABLE", "MAX_GRAPHS"]

VARIABLE = "nnUNet_pruning_cuda_graphs"
#: nnUNetv2_predict's default ensemble is 5 folds, each pruned to shapes of its own, at one tile shape: 5 graphs
#: (fewer, and the folds would evict each other in turn: a capture per fold and case)
MAX_GRAPHS = 6
_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def cuda_inference_enabled() -> bool:
    """The variable's setting (default off, see the module docstring); a value that is neither on nor off is a
    one-line error."""
    value = os.environ.get(VARIABLE, "0").strip().lower()
    if value not in _ON + _OFF:
        raise PruningError(f"{VARIABLE}={os.environ[VARIABLE]!r} is neither on nor off; set it to 1 or 0")
    return value in _ON


def instance_norm_over_voxels(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                              eps: float) -> torch.Tensor:
    """Instance norm as one reduction over the voxels of every (sample, channel), in float32, then the affine;
    the result in ``x``'s dtype. Equal to ``nn.InstanceNorm*d`` (biased variance, ``eps`` inside the root)."""
    dims = tuple(range(2, x.dim()))
    x32 = x.float()
    var, mean = torch.var_mean(x32, dim=dims, keepdim=True, correction=0)
    y = (x32 - mean) * torch.rsqrt(var + eps)
    if weight is not None:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        y = y * weight.float().view(shape) + bias.float().view(shape)
    return y.to(x.dtype)


def _on_cuda(x) -> bool:
    return torch.is_tensor(x) and x.is_cuda


class VoxelParallelInstanceNorm:
    """Mixin for ``nn.InstanceNorm*d``: on CUDA in eval mode, :func:`instance_norm_over_voxels`."""

    def forward(self, x):
        if _on_cuda(x) and not self.training and not self.track_running_stats and _enabled():
            return instance_norm_over_voxels(x, self.weight, self.bias, self.eps)
        return super().forward(x)


class VoxelParallelInstanceNorm2d(VoxelParallelInstanceNorm, nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` with :class:`VoxelParallelInstanceNorm` (a module-level class: pickle finds it)."""


class VoxelParallelInstanceNorm3d(VoxelParallelInstanceNorm, nn.InstanceNorm3d):
    """``nn.InstanceNorm3d`` with :class:`VoxelParallelInstanceNorm`."""


_NORMS = {nn.InstanceNorm2d: VoxelParallelInstanceNorm2d, nn.InstanceNorm3d: VoxelParallelInstanceNorm3d}


def _enabled() -> bool:
    try:
        return cuda_inference_enabled()
    except PruningError:
        return False  # checked where it can be one line (the trainers); here: PyTorch's path


def _layout(module: nn.Module) -> tuple:
    return tuple((t.data_ptr(), tuple(t.shape)) for t in (*module.parameters(), *module.buffers()))


@contextlib.contextmanager
def autocast_cache_off():
    """Autocast's weight-cast cache off inside (restored after). Under autocast, a cached cast is one tensor reused
    by every later call in the same autocast context; captured into a graph, it would be read at replay after the
    context that held it had ended (nnU-Net opens one per case and fold: garbage from the next case on), and a
    fold loaded in place would still see the old fold's casts. Off, the casts are part of the graph. (PyTorch's
    ``make_graphed_callables`` demands the same; recent versions do not cache in inference mode at all.)"""
    before = torch.is_autocast_cache_enabled()
    torch.set_autocast_cache_enabled(False)
    try:
        yield
    finally:
        torch.set_autocast_cache_enabled(before)


def _capture(forward, x: torch.Tensor, cuda=torch.cuda):
    """``(replay(x) -> output, bytes)``: ``forward`` captured as a CUDA graph on a static copy of ``x``, and the GPU
    memory reserved meanwhile (the graph's pool, its static input and output, the warm-up's workspace).
    ``cuda``: ``torch.cuda`` (the tests give a stand-in, to run this on the CPU)."""
    with cuda.device(x.device), autocast_cache_off():
        reserved = cuda.memory_reserved(x.device)
        static_input = x.clone()
        stream = cuda.Stream()
        stream.wait_stream(cuda.current_stream())
        with cuda.stream(stream):
            for _ in range(2):  # warm-up on a side stream: cuDNN's algorithm choice and allocations happen here
                forward(static_input)
        cuda.current_stream().wait_stream(stream)
        graph = cuda.CUDAGraph()
        # nnU-Net's predictor slices the next tiles on the GPU in a thread of its own meanwhile: under the default
        # ("global") mode a cudaMalloc there would fail that thread (and the predictor would wait for it forever)
        with cuda.graph(graph, capture_error_mode="thread_local"):
            static_output = forward(static_input)
        held = cuda.memory_reserved(x.device) - reserved

    def replay(new_input: torch.Tensor) -> torch.Tensor:
        static_input.copy_(new_input)
        graph.replay()
        return static_output.clone()
    return replay, held


class GraphedForward(TensorCaches):
    """Mixin for a network: each tile shape's forward captured once and replayed in inference on CUDA. Where the
    tensors lie is read once per change (:class:`TensorCaches`), not per call: that cost ~0.5 ms (a 6-stage
    U-Net's ~100 tensors; ResEnc ~2 ms), at 8 calls per tile with mirroring."""

    _tensor_caches = ("_graph_layout",)

    #: where the line of each capture goes (``None``: stdout)
    graph_report = None

    def __getstate__(self):
        """A copy (``copy.deepcopy``: a latency timing, a compiled twin) captures its own graphs: the graphs read
        this network's parameters and cannot be copied."""
        state = super().__getstate__()
        for name in ("_graphs", "_graph_layouts", "_kept_tensors"):
            state.pop(name, None)
        return state

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """nnU-Net's predictor loads every fold before every case; a fold pruned to other shapes than the last is
        resized into new tensors, at new addresses, where no graph of it can replay: a capture per fold and case.
        With graphs on, in inference mode (the predictor's loads; a trainer's are not), the tensors of each set of
        shapes loaded (up to :data:`MAX_GRAPHS` sets) are kept and put back when those shapes come again, so each
        fold's graphs replay (the weights are copied in as always). What it holds: the weights of each such fold,
        on the GPU."""
        shapes = tuple((k, tuple(v.shape)) for k, v in state_dict.items() if torch.is_tensor(v))
        kept = self.__dict__.setdefault("_kept_tensors", OrderedDict())
        if not _enabled() or assign or not torch.is_inference_mode_enabled():  # the predictor loads in inference
            kept.clear()
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        if shapes in kept:
            _put_back(self, kept[shapes])
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        kept[shapes] = dict(_tensor_slots(self))
        kept.move_to_end(shapes)
        while len(kept) > MAX_GRAPHS:
            kept.popitem(last=False)
        return result

    def _layout_key(self) -> int:
        """A small number per layout of the parameters and buffers (their addresses and shapes) this network has
        had, read once after each :meth:`tensors_replaced`: the graphs read the tensors where they lay at capture."""
        cached = self.__dict__.get("_graph_layout")
        if cached is None:
            seen = self.__dict__.setdefault("_graph_layouts", {})
            cached = self.__dict__["_graph_layout"] = seen.setdefault(_layout(self), len(seen))
        return cached

    def _graph_applies(self, x) -> bool:
        decoder = getattr(self, "decoder", None)
        return (not torch.compiler.is_compiling() and _on_cuda(x) and torch.is_inference_mode_enabled()
                and not self.training and not getattr(decoder, "deep_supervision", False)
                and not torch.jit.is_tracing() and _enabled())

    def forward(self, x, *args, **kwargs):
        if args or kwargs or not self._graph_applies(x):
            return super().forward(x, *args, **kwargs)
        graphs = self.__dict__.setdefault("_graphs", OrderedDict())
        autocast = torch.is_autocast_enabled("cuda")
        key = (tuple(x.shape), x.dtype, x.device, autocast, torch.get_autocast_dtype("cuda") if autocast else None,
               self._layout_key())
        replay = graphs.get(key)
        if replay is None:
            replay, held = _capture(super().forward, x)
            graphs[key] = replay
            while len(graphs) > MAX_GRAPHS:
                graphs.popitem(last=False)
            precision = (f"autocast {key[4]}" if autocast else str(x.dtype)).replace("torch.", "")
            (self.graph_report or (lambda text: print(text, flush=True)))(
                f"nnunet-pruning: CUDA graph captured for input {'x'.join(map(str, x.shape))} ({precision}): "
                f"{held / 2 ** 20:.0f} MiB of GPU memory reserved for it ({len(graphs)} of at most {MAX_GRAPHS} "
                f"graphs kept)")
        else:
            graphs.move_to_end(key)
        return replay(x)


def _tensor_slots(network: nn.Module):
    """``(state dict key, (module, name, is a parameter, tensor))`` of every parameter and buffer."""
    for prefix, module in network.named_modules():
        prefix = f"{prefix}." if prefix else ""
        for name, tensor in module._parameters.items():
            if tensor is not None:
                yield prefix + name, (module, name, True, tensor.data)
        for name, tensor in module._buffers.items():
            if tensor is not None:
                yield prefix + name, (module, name, False, tensor)


def _put_back(network: nn.Module, slots: dict) -> None:
    """Make ``network``'s parameters and buffers the kept tensors of ``slots`` again (shapes and addresses; the
    values are loaded after), and its cached channel counts agree."""
    from nnunet_pruning.core.groups import sync_cached_channels

    with torch.inference_mode(False), torch.no_grad():
        for module, name, is_parameter, tensor in slots.values():
            if is_parameter:
                if module._parameters[name].data is not tensor:
                    module._parameters[name].data = tensor
            elif module._buffers[name] is not tensor:
                module._buffers[name] = tensor
    sync_cached_channels(network)


def use_cuda_inference(network: nn.Module) -> nn.Module:
    """Give ``network`` :class:`GraphedForward` and its instance norms :class:`VoxelParallelInstanceNorm`, in
    place; return it. On the CPU nothing changes."""
    for module in network.modules():
        if type(module) in _NORMS and not module.track_running_stats:
            module.__class__ = _NORMS[type(module)]
    with_mixin(network, GraphedForward)
    return network
