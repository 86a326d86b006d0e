"""The latency target: timing, the width -> time table, and pruning until the *measured* time is at the target."""

import copy

import pytest
import torch

from nnunet_pruning.core import clock, latency
from nnunet_pruning.core.cuda_inference import GraphedForward, cuda_inference_enabled
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.groups import find_groups
from nnunet_pruning.core.latency import (LatencyDevice, LatencyModel, LatencyTable, build_latency_table,
                                         forward_seconds, group_seconds)
from nnunet_pruning.core.measure import count_gflops
from nnunet_pruning.core.pruner import Pruner
from nnunet_pruning.core.schedule import PruningSchedule
from nnunet_pruning.core.surgery import remove_channels

from tests.tiny import tiny_input, tiny_net

SHAPE = (2, 16, 16)
FAST = LatencyDevice("cpu", 1, repeats=1, warmup=0)


def _net():
    return tiny_net("plain", 2, 4, dtype=torch.float32)


def test_forward_seconds_times_a_copy_and_restores_the_threads():
    net = _net()
    before_threads = torch.get_num_threads()
    before = copy.deepcopy(net.state_dict())
    seconds = forward_seconds(net, SHAPE, LatencyDevice("cpu", 1, repeats=2, warmup=1))
    assert seconds > 0
    assert torch.get_num_threads() == before_threads
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_a_network_trained_channels_last_is_timed_in_the_layout_the_predictor_loads():
    """The trainers train channels-last on the CPU (trainers/memory_format.py); the predictor loads the weights into
    a network in nnU-Net's default layout, so every timing copy is made contiguous (the network is not changed)."""
    net = tiny_net("plain", 3, 2, dtype=torch.float32).to(memory_format=torch.channels_last_3d)
    convs = [p for p in net.parameters() if p.dim() == 5]
    assert convs and not all(p.is_contiguous() for p in convs)
    timed = latency._timing_copy(net, FAST)
    assert all(p.is_contiguous() for p in timed.parameters())
    assert all(p.is_contiguous(memory_format=torch.channels_last_3d) for p in net.parameters() if p.dim() == 5)
    assert forward_seconds(net, (2, 8, 8, 8), FAST) > 0


def test_table_has_every_group_at_full_width_and_narrower_above_the_floor():
    net = _net()
    widths = {g.name: g.width for g in find_groups(net)}
    floors = {name: 3 for name in widths}
    table = build_latency_table(net, SHAPE, FAST, floors)
    assert set(table.widths) == set(widths)
    for name, ws in table.widths.items():
        assert ws == sorted(ws) and ws[-1] == widths[name] and min(ws) >= min(3, widths[name])
        assert len(table.seconds[name]) == len(ws) and all(t > 0 for t in table.seconds[name])
    assert {g.name: g.width for g in find_groups(net)} == widths  # the network is not changed
    again = LatencyTable.from_dict(table.as_dict())
    cpu1 = LatencyDevice("cpu", 1)
    assert again == table and again.serves(cpu1, SHAPE, widths)
    assert not again.serves(LatencyDevice("cpu", 2), SHAPE, widths) and not again.serves(LatencyDevice("cuda", 1),
                                                                                          SHAPE, widths)
    narrower = {name: max(1, width // 2) for name, width in widths.items()}  # a pruned network (--c): still served
    assert again.serves(cpu1, SHAPE, narrower)
    wider = dict(widths, **{next(iter(widths)): widths[next(iter(widths))] + 1})
    assert not again.serves(cpu1, SHAPE, wider) and not again.serves(cpu1, (1, 8, 8, 8), widths)
    assert not again.serves(cpu1, SHAPE, {**widths, "extra.group": 4})
    assert table.hardware == clock.cpu_model() != ""  # measured on this CPU model, and says so
    other_machine = LatencyTable.from_dict(dict(table.as_dict(), hardware="Another CPU"))  # --c on another node
    older = LatencyTable.from_dict({k: v for k, v in table.as_dict().items() if k != "hardware"})  # before 0.2
    assert not other_machine.serves(cpu1, SHAPE, widths) and not older.serves(cpu1, SHAPE, widths)


def test_group_seconds_times_only_the_modules_of_that_group():
    net = _net()
    groups = find_groups(net)
    seconds = [group_seconds(net, i, SHAPE, FAST) for i in range(len(groups))]
    assert all(s > 0 for s in seconds)
    assert sum(seconds) < 5 * forward_seconds(net, SHAPE, FAST) + 1.0  # parts of one pass, not whole passes


def test_saving_per_channel_is_the_slope_below_the_width_and_never_negative():
    table = LatencyTable("cpu", 2, [1, 8, 8], 1.0, widths={"a": [8, 16, 32], "b": [8, 16, 32]},
                         seconds={"a": [0.2, 0.4, 0.8], "b": [0.9, 0.5, 0.8]})
    assert table.narrowing("a", 32)[1] == pytest.approx(0.4 / 16)
    assert table.narrowing("a", 20)[1] == pytest.approx(0.4 / 16)
    assert table.narrowing("a", 16)[1] == pytest.approx(0.2 / 8)
    assert table.narrowing("a", 8)[1] == table.narrowing("a", 4)[1] == 0.0  # the table stops at 8
    assert table.narrowing("b", 32)[1] == pytest.approx(0.3 / 16)
    assert table.narrowing("b", 16)[1] == 0.0  # narrower is slower there (a CPU slow path)


class _GflopsTime(LatencyModel):
    """A deterministic stand-in for timing: 'seconds' = GFLOPs, except that group ``frozen`` saves nothing."""

    def __init__(self, network, frozen: str | None = None):
        self.input_shape = SHAPE
        self.where = FAST
        self.frozen = frozen
        groups = find_groups(network)
        base = count_gflops(network, SHAPE[0], SHAPE[1:])
        widths, seconds = {}, {}
        for index, g in enumerate(groups):
            narrow = copy.deepcopy(network)
            remove_channels(narrow, find_groups(narrow)[index], range(g.width // 2, g.width))
            widths[g.name] = [g.width // 2, g.width]
            saved = 0.0 if g.name == frozen else base - count_gflops(narrow, SHAPE[0], SHAPE[1:])
            seconds[g.name] = [base - saved, base]
        self.table = LatencyTable("cpu", 1, list(SHAPE), base, widths, seconds)

    def measure(self, network):
        return count_gflops(network, SHAPE[0], SHAPE[1:])


@pytest.mark.parametrize("method", ["taylor", "random_largest"])
def test_latency_target_is_reached_by_measurement(method):
    net = _net()
    frozen = find_groups(net)[0].name
    model = _GflopsTime(net, frozen)
    schedule = PruningSchedule(method=method, target_metric="latency", keep_fraction=0.5, warmup_epochs=1,
                               every_epochs=1, step_fraction=0.25)
    pruner = Pruner(net, schedule, SHAPE, latency=model)
    assert pruner.original["latency"] == model.table.base_seconds
    pruner.attach()
    x = tiny_input(2, 4, dtype=torch.float32)
    records = []
    for epoch in range(8):
        net.train().zero_grad()
        net(x).square().mean().backward()
        record = pruner.maybe_step(epoch)
        if record:
            records.append(record)
    assert pruner.finished
    last = records[-1]
    assert last["latency"] == pytest.approx(model.measure(net))
    assert last["latency_fraction"] <= 0.5 + 1e-9 and last["latency_fraction"] > 0.3
    assert all("latency" in r and "latency_fraction" in r for r in records)
    assert find_groups(net)[0].width == find_groups(_net())[0].width  # it saves nothing: never narrowed
    state = pruner.state_dict()
    resumed = Pruner(copy.deepcopy(net), schedule, SHAPE, latency=model)
    resumed.load_state_dict(state)
    assert resumed.finished and resumed.original == pruner.original


class _NoisyMachine(LatencyModel):
    """A CPU where only the first group's time falls as it narrows (to half its width) and every other group saves
    a trace (0.05% of the time per channel, the deep layers of the demo's table on an AMD EPYC): the time is
    measured with noise (sd 2%, as measured there), so a cut that saves a trace measures faster by luck."""

    def __init__(self, network, seed=0):
        self.input_shape, self.where = SHAPE, FAST
        self.groups = find_groups(network)
        self.full = {g.name: g.width for g in self.groups}
        self.first = self.groups[0].name
        self.rng = __import__("random").Random(seed)
        widths, seconds = {}, {}
        for g in self.groups:
            widths[g.name] = [g.width // 4, g.width // 2, 3 * g.width // 4, g.width]
            seconds[g.name] = [self._seconds(g.name, w) for w in widths[g.name]]
        self.table = LatencyTable("cpu", 1, list(SHAPE), 1.0, widths, seconds)

    def _seconds(self, name, width):
        if name == self.first:
            return 0.5 * max(width, self.full[name] // 2) / self.full[name]
        return 0.0005 * width

    def measure(self, network):
        return 0.5 + sum(self._seconds(g.name, g.width) - self._seconds(g.name, self.full[g.name])
                         for g in find_groups(network)) + self.rng.gauss(0, 0.02)


def test_narrowing_aims_at_the_nearest_step_of_the_staircase_that_pays():
    """oneDNN blocks channels: a demo full-resolution group took as long at 24 channels as at 32 and half at 16 (a
    round cutting it to 26-29 saved nothing); where time falls evenly the next width measured is the aim."""
    table = LatencyTable("cpu", 2, [1, 8, 8], 1.0, widths={"stairs": [8, 16, 24, 32], "even": [8, 16, 24, 32]},
                         seconds={"stairs": [17.9, 18.0, 34.2, 36.4], "even": [1.0, 2.0, 3.0, 4.0]})
    assert table.narrowing("stairs", 32) == (16, pytest.approx((36.4 - 18.0) / 16))
    assert table.narrowing("stairs", 28)[0] == 16
    assert table.narrowing("even", 32) == (24, pytest.approx(1 / 8))
    assert table.narrowing("even", 20) == (16, pytest.approx(1 / 8))


class _Staircase(LatencyModel):
    """A CPU whose time per group falls only when the group is cut to half its width (and no further)."""

    def __init__(self, network):
        self.input_shape, self.where = SHAPE, FAST
        self.full = {g.name: g.width for g in find_groups(network)}
        widths = {n: [w // 4, w // 2, 3 * w // 4, w] for n, w in self.full.items()}
        seconds = {n: [self._seconds(n, x) for x in ws] for n, ws in widths.items()}
        self.table = LatencyTable("cpu", 1, list(SHAPE), float(sum(self.full.values())), widths, seconds)

    def _seconds(self, name, width):
        return float(self.full[name] if width > self.full[name] // 2 else self.full[name] // 2)

    def measure(self, network):
        return sum(self._seconds(g.name, g.width) for g in find_groups(network))


@pytest.mark.parametrize("whole", [True, False])
@pytest.mark.parametrize("method", ["taylor", "random_largest"])
def test_a_latency_round_cuts_a_group_to_a_step_of_its_staircase_or_not_at_all(method, whole, monkeypatch):
    """Every group narrowed lands where its time falls (half its width here): no channel goes for nothing. Without
    whole cuts the rounds leave groups between two steps, narrower and no faster."""
    from nnunet_pruning.core.targets import LatencyTarget

    monkeypatch.setattr(LatencyTarget, "whole_cuts", whole)
    net = _net()
    model = _Staircase(net)
    schedule = PruningSchedule(method=method, target_metric="latency", keep_fraction=0.7, warmup_epochs=1,
                               every_epochs=1, step_fraction=0.3)
    pruner = Pruner(net, schedule, SHAPE, latency=model)
    pruner.attach()
    net.train()
    net(tiny_input(2, 4, dtype=torch.float32)).square().mean().backward()
    record = pruner.step(0)
    between = [g.name for g in find_groups(net) if model.full[g.name] // 2 < g.width < model.full[g.name]]
    if whole:
        assert pruner.target_reached and record["latency_fraction"] <= 0.7 and not between
    else:
        assert between


@pytest.mark.parametrize("rule", [True, False])
def test_groups_whose_narrowing_saves_a_trace_keep_their_channels(rule, monkeypatch):
    """An unreachable target: the pruner takes what pays (the first group, to half) and stops; without the rule
    (MIN_ELASTICITY 0) it cut the other groups for noise, as the demo's STAMPLatency did on a 2-core AMD CPU."""
    if not rule:
        monkeypatch.setattr(latency, "MIN_ELASTICITY", 0.0)
    net = _net()
    model = _NoisyMachine(net)
    schedule = PruningSchedule(method="random_largest", target_metric="latency", keep_fraction=0.2,
                               warmup_epochs=1, every_epochs=1, step_fraction=0.3)
    pruner = Pruner(net, schedule, SHAPE, latency=model)
    for epoch in range(3):
        pruner.maybe_step(epoch)
    widths = {g.name: g.width for g in find_groups(net)}
    others = [name for name in widths if name != model.first]
    assert widths[model.first] == model.full[model.first] // 2
    if rule:
        assert all(widths[n] == model.full[n] for n in others)
        assert pruner.finished and pruner.outcome == "nothing_left_to_cut"
    else:
        assert sum(model.full[n] - widths[n] for n in others) > 0.25 * sum(model.full[n] for n in others)


def test_a_latency_target_the_floors_hold_is_warned_before_training():
    """STAMPLatency_fullres24 on the fine task stopped at 66% of the time for a 50% target: the floors held it. A copy
    at the floors is measured first (this machine: only the first group's time falls, to half)."""
    def warning(keep):
        net = _net()
        schedule = PruningSchedule(method="random_largest", target_metric="latency", keep_fraction=keep,
                                   min_width_full_resolution=3)
        return Pruner(net, schedule, SHAPE, latency=_NoisyMachine(net)).floor_warning()

    text = warning(0.2)
    assert text.startswith("WARNING: with every layer at its floor, min_width=1 (min_width_full_resolution=3 at full "
                           "resolution), the forward pass measured ")
    assert text.endswith("of the unpruned time, above the target of 20%: the run will likely stop short of it; lower "
                         "the floors or raise keep_fraction")
    assert warning(0.8) is None
    params = Pruner(_net(), PruningSchedule(keep_fraction=0.01), SHAPE)
    assert params.floor_warning() is None  # counted targets: check_reachable refuses them instead


def test_latency_target_needs_a_latency_model():
    with pytest.raises(PruningError, match="latency target needs a LatencyModel"):
        Pruner(_net(), PruningSchedule(target_metric="latency", keep_fraction=0.5), SHAPE)


def test_unknown_latency_device_is_one_line():
    with pytest.raises(PruningError, match="not cpu or cuda"):
        LatencyDevice("tpu").validate()


def test_whole_network_times_run_on_the_backend_that_will_predict(monkeypatch):
    """With a runtime backend, the table's base time and every measurement run the network on that runtime (one
    compiled model per network, made in the warm-up); the per-group slopes stay PyTorch's modules alone. (One
    runtime here: both take the same path, core/runtime_forward.py; OpenVINO's runs: tests/core/test_runtimes.py.)"""
    from nnunet_pruning.core import runtimes

    backend = "onnxruntime"  # a dependency of the package
    made = []
    make_runner = runtimes.make_runner

    def counting(name, *args, **kwargs):
        made.append(name)
        return make_runner(name, *args, **kwargs)

    monkeypatch.setattr(runtimes, "make_runner", counting)
    where = LatencyDevice("cpu", 1, repeats=1, warmup=1, backend=backend)
    net = tiny_net("plain", 2, 3, dtype=torch.float32)
    table = build_latency_table(net, SHAPE, where, fractions=(0.5,))
    assert made == [backend] and table.backend == backend  # base_seconds: on the runtime; the groups: not
    assert "cpu, 1 threads, " + backend == where.describe()
    widths = {g.name: g.width for g in find_groups(net)}
    assert table.serves(where, SHAPE, widths) and not table.serves(LatencyDevice("cpu", 1), SHAPE, widths)
    model = LatencyModel(table, where, SHAPE, reference=copy.deepcopy(net))
    group = find_groups(net)[0]
    remove_channels(net, group, range(group.width // 2))
    assert model.measure(net) > 0 and made == [backend] * 3  # the pruned network and its reference
    assert forward_seconds(net, SHAPE, where) > 0 and made == [backend] * 4


def test_a_runtime_backend_is_checked_where_latency_is_measured():
    with pytest.raises(PruningError, match="not one of torch"):
        LatencyDevice("cpu", backend="tensorrt").validate()
    with pytest.raises(PruningError, match="warmup >= 1"):
        LatencyDevice("cpu", warmup=0, backend="onnxruntime").validate()


def test_where_networks_predict_graphed_they_are_timed_graphed(fake_cuda, monkeypatch, capsys):
    """On a GPU with ``nnUNet_pruning_cuda_graphs=1`` the networks predict as core/cuda_inference.py runs them, so
    the latency target times them so (issue 21): the whole network and each module of the table captured and
    replayed, in inference mode (the CPU stands in for CUDA, the capture is the fake's). The table records it and
    is not reused with the other setting."""
    monkeypatch.setattr(latency, "_graphed", lambda where: cuda_inference_enabled())
    where = LatencyDevice("cpu", 1, repeats=1, warmup=1)
    net = tiny_net("plain", 2, 2, dtype=torch.float32)
    table = build_latency_table(net, SHAPE, where, fractions=(0.5,))
    groups = find_groups(net)
    assert table.cuda_graphs and fake_cuda[0] == (1, *SHAPE)  # the whole network first
    assert len(fake_cuda) >= 1 + 2 * len(groups)  # then every group's modules, at two widths each
    assert not isinstance(net, GraphedForward)  # timed on copies
    widths = {g.name: g.width for g in groups}
    assert table.serves(where, SHAPE, widths)
    model = LatencyModel(table, where, SHAPE, reference=copy.deepcopy(net))
    before = len(fake_cuda)
    assert model.measure(net) > 0 and fake_cuda[before:] == [(1, *SHAPE)] * 2  # the network and its reference
    monkeypatch.setenv("nnUNet_pruning_cuda_graphs", "0")
    assert not where.cuda_graphs and not table.serves(where, SHAPE, widths)
    assert forward_seconds(net, SHAPE, where) > 0 and len(fake_cuda) == before + 2  # the setting off: no capture
    assert "CUDA graph captured" not in capsys.readouterr().out  # the timing copies' captures print nothing


@pytest.mark.parametrize("architecture, dim", [("plain", 2), ("resenc", 3)])
def test_one_shape_pass_serves_every_width(architecture, dim):
    """The table measures each group at several widths: the input shapes of the modules its width decides come
    from ONE meta pass of the unpruned network (spatial sizes do not depend on widths) and equal what a forward
    pass of the narrowed network hands each module."""
    from nnunet_pruning.core.latency import _affected_modules, _input_shapes, _spatial_inputs

    net = tiny_net(architecture, dim, 4, deep_supervision=True, dtype=torch.float32)
    shape = tuple(tiny_input(dim, 4, batch=1).shape[1:])
    spatial = _spatial_inputs(net, shape)
    for index in range(len(find_groups(net))):
        narrowed = copy.deepcopy(net)
        group = find_groups(narrowed)[index]
        if group.width > 1:
            remove_channels(narrowed, group, range(group.width // 2))
        group = find_groups(narrowed)[index]
        seen, handles = {}, []
        def record(module, inputs):
            seen.setdefault(id(module), tuple(inputs[0].shape))  # returns None: the input is unchanged

        for module in _affected_modules(group):
            handles.append(module.register_forward_pre_hook(record))
        narrowed.decoder.deep_supervision = False
        with torch.no_grad():
            narrowed.eval()(torch.zeros((1, *shape)))
        for handle in handles:
            handle.remove()
        assert _input_shapes(narrowed, group, spatial) == seen and seen
