"""Measured forward time as a pruning target: timing a network, and a per-group width -> time table.

FLOPs are not time (docs/results.md): on a CPU a convolution with few channels takes a slow path, on a
GPU the InstanceNorm kernels barely shrink with the width. So the ``latency`` target measures. At train
start :func:`build_latency_table` times, for each channel group, the modules whose shapes follow its width
(the convs writing and reading it, its norm and nonlinearity, each alone at its input size in the network)
at a few widths; a pruning step reads from it how much time one channel of each group saves at the
group's current width, prunes, and then *measures* the whole pruned network again, until the measured
time is at the goal.

Timing is one batch-1 forward pass of the network as the predictor runs it (eval mode, no deep
supervision, no gradients; fp16 autocast on CUDA as nnU-Net's predictor), the median of ``repeats`` runs
after ``warmup`` runs, on a copy without hooks, with ``threads`` CPU threads when timing on the CPU.

On a GPU with ``nnUNet_pruning_cuda_graphs=1`` (:mod:`~nnunet_pruning.core.cuda_inference`) the network is timed
as it will predict: voxel-parallel norms, each forward replayed as a CUDA graph (the table's modules too, each
captured alone), in ``torch.inference_mode()``; the table records it, and a table measured the other way is not
reused.

On the CPU the network runs where it will predict: ``backend`` (``nnUNet_pruning_backend``: PyTorch, ONNX
Runtime or OpenVINO, :mod:`~nnunet_pruning.core.runtime_forward`). Every whole-network time (the table's
``base_seconds``, each step's measurement) is taken on that backend, under ``torch.inference_mode()`` as
nnU-Net's predictor runs (a compiled runtime model per network, made in the warm-up runs). The table's
per-group slopes time each group's modules alone, in PyTorch (a single module does not run on a runtime):
they only rank the groups; whether a step reached the target is always measured on the backend.
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Sequence

import torch
from torch import nn

from nnunet_pruning.core.clock import cpu_model, interleaved_seconds
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.groups import find_groups, in_channels
from nnunet_pruning.core.surgery import remove_channels

__all__ = ["TABLE_FRACTIONS", "MIN_ELASTICITY", "NEAR_BEST", "LatencyDevice", "forward_seconds", "relative_seconds",
           "group_seconds", "LatencyTable", "build_latency_table", "LatencyModel"]

#: the widths (as fractions of each group's full width) the table measures besides the full width
TABLE_FRACTIONS = (0.75, 0.5, 0.25)
#: a group is narrowed for time only while it pays: removing a share f of its channels must be estimated (by the
#: table's slope at its width) to save at least MIN_ELASTICITY x f of the unpruned forward time, e.g. a tenth of
#: its channels >= 0.2%. Below that a cut's gain is within the noise of timing it (one measurement's sd was 2.2% on
#: a 2-core CPU), so it was kept by luck: on a CPU where the target could not be reached (the full-resolution
#: layers' time stops falling below 16 channels) the deep layers were cut from 5.6M to 34-116k parameters for
#: 5-10% of the time, and test Dice fell from 0.81 (stock) to 0.50 +- 0.24 (docs/results.md).
MIN_ELASTICITY = 0.02
#: a group's narrowing aims at the widest measured width whose saving per channel is at least this share of the
#: best narrower one (:meth:`LatencyTable.narrowing`): the nearest step of the time's staircase that pays
NEAR_BEST = 0.75


@dataclass(frozen=True)
class LatencyDevice:
    """Where latency is measured: ``cpu`` (with ``threads`` threads; 0 = torch's current setting) or ``cuda``."""

    device: str = "cpu"
    threads: int = 0
    repeats: int = 5
    warmup: int = 2
    #: what runs the network on the CPU: ``torch``, ``onnxruntime`` or ``openvino`` (module docstring)
    backend: str = "torch"

    def validate(self) -> None:
        from nnunet_pruning.core import runtimes

        kind = self.device.split(":")[0]
        if kind not in ("cpu", "cuda"):
            raise PruningError(f"latency device {self.device!r} is not cpu or cuda")
        if kind == "cuda" and not torch.cuda.is_available():
            raise PruningError(f"latency device {self.device} asked for, but CUDA is not available here")
        if self.threads < 0 or self.repeats < 1 or self.warmup < 0:
            raise PruningError(f"latency timing needs threads >= 0, repeats >= 1, warmup >= 0 (got {self.threads}, "
                               f"{self.repeats}, {self.warmup})")
        runtimes.require(self.backend)
        if self.backend != "torch" and (kind != "cpu" or self.warmup < 1):
            raise PruningError(f"latency on {self.backend} needs the cpu device and warmup >= 1 (its first run "
                               f"compiles the model); got {self.device}, warmup {self.warmup}")

    @property
    def cuda_graphs(self) -> bool:
        """Whether networks timed here run as :mod:`~nnunet_pruning.core.cuda_inference` makes them predict."""
        return _graphed(self)

    def hardware(self) -> str:
        """The processor or card the times are measured on: a table measured on another is not reused."""
        if self.device.startswith("cuda"):
            return torch.cuda.get_device_name(torch.device(self.device))
        return cpu_model()

    def describe(self) -> str:
        if self.device.startswith("cuda"):
            graphs = ", CUDA graphs" if self.cuda_graphs else ""
            return f"{self.device} ({torch.cuda.get_device_name(torch.device(self.device))}{graphs})"
        runtime = "" if self.backend == "torch" else f", {self.backend}"
        return f"cpu, {self.threads or torch.get_num_threads()} threads{runtime}"


@contextlib.contextmanager
def _threads(threads: int):
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _graphed(where: "LatencyDevice") -> bool:
    """On CUDA with ``nnUNet_pruning_cuda_graphs`` on: networks predict graphed there, so they are timed so."""
    from nnunet_pruning.core.cuda_inference import cuda_inference_enabled

    return where.device.startswith("cuda") and cuda_inference_enabled()


def _silent(line: str) -> None:
    pass


def _timing_copy(network: nn.Module, where: "LatencyDevice") -> nn.Module:
    """The network as the predictor runs it on ``where`` (its forward on ``where.backend``; graphed as
    :func:`~nnunet_pruning.core.cuda_inference.use_cuda_inference` makes it where :func:`_graphed`), without any
    hook of the training run, its parameters in nnU-Net's default layout as the predictor loads them: a network
    trained channels-last (trainers/memory_format.py) timed in that layout measured 0.35-0.39 of the reference's
    time instead of 0.41-0.46 (one demo model; another 0.45-0.48 instead of 0.39-0.44)."""
    model = copy.deepcopy(network).to(memory_format=torch.contiguous_format)
    for module in model.modules():
        for hooks in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            if hasattr(module, hooks):
                getattr(module, hooks).clear()
    decoder = getattr(model, "decoder", None)
    if decoder is not None and hasattr(decoder, "deep_supervision"):
        decoder.deep_supervision = False
    model = model.to(where.device).eval()
    if _graphed(where):
        from nnunet_pruning.core.cuda_inference import use_cuda_inference

        use_cuda_inference(model).graph_report = _silent  # a table captures hundreds: no line for each
    if where.backend != "torch":
        from nnunet_pruning.core.runtime_forward import use_runtime

        use_runtime(model, where.backend, "f32")
    return model


@contextlib.contextmanager
def _as_predictor(where: LatencyDevice):
    """No gradients, fp16 autocast on CUDA (as nnU-Net's predictor runs), ``where.threads`` CPU threads;
    inference mode on CUDA (as the predictor; CUDA graphs are captured only there) and for a runtime backend
    (where the network's forward takes it)."""
    cuda = where.device.startswith("cuda")
    autocast = torch.autocast("cuda", dtype=torch.float16) if cuda else contextlib.nullcontext()
    plain_cpu = where.backend == "torch" and not cuda and not _graphed(where)
    grad = torch.no_grad() if plain_cpu else torch.inference_mode()
    with _threads(where.threads), grad, autocast:
        yield


def _median_seconds(run: Callable[[], object], where: LatencyDevice) -> float:
    """Median seconds of ``run()`` over ``where.repeats`` runs after ``where.warmup``, run as the predictor runs."""
    with _as_predictor(where):
        times = interleaved_seconds({"run": run}, where.warmup, where.repeats, where.device)["run"]
    return statistics.median(times)


def forward_seconds(network: nn.Module, input_shape: Sequence[int], where: LatencyDevice) -> float:
    """Median seconds of one batch-1 inference forward pass of ``network`` at ``input_shape`` (C, *spatial)."""
    model = _timing_copy(network, where)
    x = torch.randn((1, *input_shape), device=where.device)
    return _median_seconds(lambda: model(x), where)


@dataclass
class LatencyTable:
    """Measured forward seconds of the full network (``base_seconds``) and, per group, seconds of the modules
    its width decides: ``seconds[group][i]`` at ``widths[group][i]`` (ascending; the last is the full width)."""

    device: str
    threads: int
    input_shape: list[int]
    base_seconds: float
    widths: dict[str, list[int]] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    build_seconds: float = 0.0
    backend: str = "torch"
    #: timed as :mod:`~nnunet_pruning.core.cuda_inference` runs the network (CUDA graphs, voxel-parallel norms)
    cuda_graphs: bool = False
    #: the CPU model or GPU name it was measured on (:meth:`LatencyDevice.hardware`; "" in tables from before 0.2)
    hardware: str = ""

    def seconds_at(self, name: str, width: int) -> float:
        """The group's measured seconds at ``width``, linear between the widths measured (the nearest outside)."""
        widths, seconds = self.widths[name], self.seconds[name]
        if width <= widths[0] or width >= widths[-1]:
            return seconds[0] if width <= widths[0] else seconds[-1]
        j = next(i for i, w in enumerate(widths) if w >= width)
        share = (width - widths[j - 1]) / (widths[j] - widths[j - 1])
        return seconds[j - 1] + share * (seconds[j] - seconds[j - 1])

    def narrowing(self, name: str, width: int) -> tuple[int, float]:
        """Where narrowing group ``name`` from ``width`` pays: ``(w, s)``, the widest measured width ``w`` below it
        whose saving per channel removed on the way there is at least :data:`NEAR_BEST` of the best over every
        narrower width measured, and that saving ``s``; ``(width, 0.0)`` where no narrower measured width is faster.
        A latency round cuts a group to ``w`` or leaves it (:class:`~nnunet_pruning.core.targets.LatencyTarget`).

        Time falls in steps on a CPU (oneDNN blocks channels by 8 or 16: on a 2-core AMD EPYC a full-resolution
        conv took the same time at 24 channels as at 32, and 40% less at 16), so the saving is not the slope just
        below ``width``: here ``w`` is 16, a cut to 24 or 28 saves nothing. Where time falls evenly ``w`` is the
        next width measured (a quarter of the full width narrower). Nothing is known below the narrowest
        (25% of the full width): a latency target narrows no group below it (extrapolated, one full-resolution
        group was cut to 1 channel and the model lost a class).
        """
        now = self.seconds_at(name, width)
        narrower = [(w, (now - t) / (width - w)) for w, t in zip(self.widths[name], self.seconds[name]) if w < width]
        best = max((saving for _, saving in narrower), default=0.0)
        if best <= 0:
            return width, 0.0
        return max((w, saving) for w, saving in narrower if saving >= NEAR_BEST * best)

    def serves(self, where: "LatencyDevice", input_shape: Sequence[int], widths: dict[str, int]) -> bool:
        """The one rule for reusing a saved table (``--c``, a restart): measured on the same device (and the same
        CPU model or card: a run resumed on another machine measures again) with the same threads, backend and CUDA
        graph setting, at the same patch, for the same groups, each now at most as wide as the table measured it."""
        full = {n: w[-1] for n, w in self.widths.items()}
        return (self.device == where.device and self.hardware == where.hardware() and self.threads == where.threads
                and self.backend == where.backend and self.cuda_graphs == where.cuda_graphs
                and list(self.input_shape) == list(input_shape) and set(full) == set(widths)
                and all(widths[n] <= full[n] for n in widths))

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LatencyTable":
        return cls(**data)


def _affected_modules(group) -> list[nn.Module]:
    """The modules whose shapes follow the group's width: producer convs and norms, consumer convs."""
    modules: list[nn.Module] = []
    for producer in group.producers:
        modules.append(producer.conv)
        if producer.norm is not None:
            modules.append(producer.norm)
    modules += [consumer.conv for consumer in group.consumers]
    unique: dict[int, nn.Module] = {}
    for module in modules:
        unique.setdefault(id(module), module)
    return list(unique.values())


def _spatial_inputs(network: nn.Module, input_shape: Sequence[int]) -> dict[str, tuple]:
    """The spatial size of the input of every leaf module that runs in one batch-1 inference pass (on the meta
    device), by module name. Widths do not change it: one pass serves the network pruned to any widths."""
    sizes: dict[str, tuple] = {}
    meta = _timing_copy(network, LatencyDevice("meta"))
    handles = []
    for name, module in meta.named_modules():
        if next(module.children(), None) is None:
            def record(m, inputs, name=name):
                sizes.setdefault(name, tuple(inputs[0].shape[2:]))  # returns None: the input is unchanged

            handles.append(module.register_forward_pre_hook(record))
    with torch.no_grad():
        meta(torch.zeros((1, *input_shape), device="meta"))
    for handle in handles:
        handle.remove()
    return sizes


def _input_shapes(network: nn.Module, group, spatial: dict[str, tuple]) -> dict[int, tuple]:
    """The batch-1 input shape of each module that ``group``'s width decides (:func:`_affected_modules`), by
    ``id``: convs read ``in_channels`` off their weight, a producer's norm normalises the group's channels; the
    spatial size from :func:`_spatial_inputs`. A module that does not run in inference is left out."""
    names = {id(m): name for name, m in network.named_modules()}
    channels: dict[int, int] = {}
    for producer in group.producers:
        channels[id(producer.conv)] = in_channels(producer.conv)
        if producer.norm is not None:
            channels[id(producer.norm)] = group.width
    for consumer in group.consumers:
        channels[id(consumer.conv)] = in_channels(consumer.conv)
    return {key: (1, width, *spatial[names[key]]) for key, width in channels.items() if names.get(key) in spatial}


def _module_seconds(module: nn.Module, shape: tuple, where: LatencyDevice) -> float:
    """Median seconds of ``module`` alone on a random input of ``shape`` (a norm with its LeakyReLU), graphed
    where the network will be (:func:`_graphed`)."""
    if not isinstance(module, nn.modules.conv._ConvNd):
        module = nn.Sequential(module, nn.LeakyReLU(0.01, inplace=True))
    timed = _timing_copy(module, replace(where, backend="torch"))
    x = torch.randn(shape, device=where.device)
    return _median_seconds(lambda: timed(x), where)


def group_seconds(network: nn.Module, index: int, input_shape: Sequence[int], where: LatencyDevice,
                  spatial: dict[str, tuple] | None = None) -> float:
    """Seconds of the modules whose shapes follow group ``index``'s width (each timed alone at its input
    size): the part of the forward time that this group's width decides. ``spatial``: the network's
    :func:`_spatial_inputs` at ``input_shape``, if already known (any widths)."""
    group = find_groups(network)[index]
    shapes = _input_shapes(network, group, spatial or _spatial_inputs(network, input_shape))
    return sum(_module_seconds(m, shapes[id(m)], where) for m in _affected_modules(group) if id(m) in shapes)


def build_latency_table(network: nn.Module, input_shape: Sequence[int], where: LatencyDevice,
                        min_widths: dict[str, int] | None = None, fractions: Sequence[float] = TABLE_FRACTIONS,
                        progress: Callable[[str], None] | None = None) -> LatencyTable:
    """Time ``network`` whole (``base_seconds``), and per group the modules its width decides, at its full
    width and at ``fractions`` of it (never below its ``min_widths`` entry). Timing each group's modules
    alone is far less noisy than differences of whole-network times. ``network`` is not changed."""
    where.validate()
    started = time.perf_counter()
    base = forward_seconds(network, input_shape, replace(where, repeats=2 * where.repeats))
    cpu_copy = copy.deepcopy(network).to("cpu")
    groups = find_groups(cpu_copy)
    spatial = _spatial_inputs(cpu_copy, input_shape)
    table = LatencyTable(where.device, where.threads or torch.get_num_threads(), [int(s) for s in input_shape],
                         base, backend=where.backend, cuda_graphs=where.cuda_graphs, hardware=where.hardware())
    for index, group in enumerate(groups):
        floor = max(1, (min_widths or {}).get(group.name, 1))
        widths = sorted({max(floor, round(group.width * f)) for f in fractions} | {group.width})
        times = []
        for width in widths:
            narrowed = copy.deepcopy(cpu_copy)
            if width < group.width:
                remove_channels(narrowed, find_groups(narrowed)[index], range(width, group.width))
            times.append(group_seconds(narrowed, index, input_shape, where, spatial))
        table.widths[group.name] = widths
        table.seconds[group.name] = times
        if progress is not None:
            progress(f"latency table: group {index + 1}/{len(groups)} {group.name}: "
                     + ", ".join(f"{w} ch {t * 1e3:.1f} ms" for w, t in zip(widths, times)))
    table.build_seconds = time.perf_counter() - started
    return table


def relative_seconds(network: nn.Module, reference: nn.Module, input_shape: Sequence[int],
                     where: LatencyDevice) -> float:
    """Forward time of ``network`` as a fraction of ``reference``'s: the median of per-round ratios, the two
    timed alternately in every round, so that a machine that speeds up or slows down over seconds (shared
    CPUs drift by 20-30%) affects both alike."""
    return _ratio(_timing_copy(network, where), _timing_copy(reference, where), input_shape, where)


def _ratio(model: nn.Module, other: nn.Module, input_shape: Sequence[int], where: LatencyDevice) -> float:
    """:func:`relative_seconds` of two networks already prepared by ``_timing_copy``."""
    x = torch.randn((1, *input_shape), device=where.device)
    with _as_predictor(where):
        times = interleaved_seconds({"model": lambda: model(x), "other": lambda: other(x)}, where.warmup,
                                    where.repeats, where.device)
    return statistics.median(a / b for a, b in zip(times["model"], times["other"]))


class LatencyModel:
    """What the pruner needs for a latency target: the table (slopes) and a way to measure the network.

    With a ``reference`` (the unpruned network), :meth:`measure` times the network against it, interleaved,
    and returns ``table.base_seconds`` x the measured ratio: robust to a machine whose speed drifts.
    Without one it times the network alone.
    """

    def __init__(self, table: LatencyTable, where: LatencyDevice, input_shape: Sequence[int],
                 reference: nn.Module | None = None):
        self.table = table
        self.where = where
        self.input_shape = tuple(int(s) for s in input_shape)
        self.reference = None if reference is None else _timing_copy(reference, where)

    def measure(self, network: nn.Module) -> float:
        if self.reference is None:
            return forward_seconds(network, self.input_shape, self.where)
        model = _timing_copy(network, self.where)
        return self.table.base_seconds * _ratio(model, self.reference, self.input_shape, self.where)

    def narrowing(self, groups) -> dict[str, tuple[int, float]]:
        """Per group at its current width: (the width its narrowing aims at, the seconds saved per channel on the way
        there) from the table (:meth:`LatencyTable.narrowing`); ``(width, 0.0)``, the group keeps its channels, where
        narrowing it does not pay: :data:`MIN_ELASTICITY`."""
        floor = MIN_ELASTICITY * self.table.base_seconds
        result = {}
        for g in groups:
            aim, saving = self.table.narrowing(g.name, g.width)
            result[g.name] = (aim, saving) if saving * g.width >= floor else (g.width, 0.0)
        return result

    def savings(self, groups) -> dict[str, float]:
        """Estimated seconds saved per channel removed, per group at its current width (:meth:`narrowing`)."""
        return {name: saving for name, (_, saving) in self.narrowing(groups).items()}
