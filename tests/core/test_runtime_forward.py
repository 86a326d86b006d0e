"""Inference through a runtime inside ``network(x)`` (core/runtime_forward.py): only in inference, the same
numbers, the state dict unchanged, one compiled model per fold and shape, rebuilt when the weights change."""

import copy
import random
from types import SimpleNamespace

import pytest
import torch

from nnunet_pruning.core import runtime_forward, runtimes
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.groups import find_groups
from nnunet_pruning.core.resizable import make_resizable
from nnunet_pruning.core.runtime_forward import (AutoChoice, RuntimeForward, backend_in_use, runtime_setting,
                                                 use_runtime)
from nnunet_pruning.core.surgery import remove_channels

from tests.tiny import tiny_input, tiny_net

pytest.importorskip("onnxruntime")


def _pruned(seed):
    net = tiny_net("plain", 3, 4, seed=0, dtype=torch.float32).eval()
    rng = random.Random(seed)
    for group in find_groups(net):
        if group.width > 1:
            remove_channels(net, group, rng.sample(range(group.width), rng.randint(1, group.width - 1)))
    return net


@pytest.fixture
def exports(monkeypatch):
    """Every export the runtime forward makes, as (input shape)."""
    made = []
    export = runtimes.export_onnx
    monkeypatch.setattr(runtimes, "export_onnx", lambda net, shape, target=None: made.append(shape) or
                        export(net, shape, target))
    return made


def test_the_class_swap_keeps_state_dict_identity_and_type():
    net = make_resizable(tiny_net("plain", 3, 4, dtype=torch.float32))
    cls, keys, params = type(net), list(net.state_dict()), [id(p) for p in net.parameters()]
    assert use_runtime(net, "onnxruntime") is net
    assert isinstance(net, RuntimeForward) and isinstance(net, cls) and type(net).__name__ == cls.__name__
    assert list(net.state_dict()) == keys and [id(p) for p in net.parameters()] == params
    assert use_runtime(net, "torch").runtime_backend == "torch" and type(net).__mro__.count(RuntimeForward) == 1


def test_only_inference_runs_on_the_runtime_with_pytorchs_numbers(exports):
    net = use_runtime(tiny_net("plain", 3, 4, dtype=torch.float32).eval(), "onnxruntime")
    x = tiny_input(3, 4, dtype=torch.float32, batch=1)
    with torch.no_grad():  # training's validation steps: PyTorch
        expected = net(x)
    assert exports == []
    with torch.inference_mode():  # nnU-Net's predictor
        got = net(x)
    assert exports == [tuple(x.shape)]
    assert float((got - expected).abs().max()) < 1e-4 * float(expected.abs().max())
    with torch.inference_mode():
        net(x.double().float())
        net.train()
        net(x)  # training mode: PyTorch
        net.eval().double()
        net(x.double())  # float64: PyTorch
    assert exports == [tuple(x.shape)]


def test_deep_supervision_keeps_pytorch(exports):
    net = use_runtime(tiny_net("plain", 3, 4, deep_supervision=True, dtype=torch.float32).eval(), "onnxruntime")
    with torch.inference_mode():
        out = net(tiny_input(3, 4, dtype=torch.float32, batch=1))
    assert isinstance(out, (list, tuple)) and exports == []


def test_folds_pruned_to_different_shapes_are_compiled_once_each(exports):
    """nnU-Net's predictor: before each case, load fold 0 then fold 1 into one network, predict with each."""
    folds = [_pruned(1), _pruned(2)]
    states = [f.state_dict() for f in folds]
    net = use_runtime(make_resizable(tiny_net("plain", 3, 4, dtype=torch.float32)).eval(), "onnxruntime")
    x = tiny_input(3, 4, dtype=torch.float32, batch=1)
    for case in range(3):
        for fold, state in zip(folds, states):
            net.load_state_dict(state)
            with torch.no_grad():
                expected = fold(x)
            with torch.inference_mode():
                got = net(x)
            assert float((got - expected).abs().max()) < 1e-4 * float(expected.abs().max())
    assert len(exports) == 2
    with torch.no_grad():  # any other change of the weights (an optimizer step, pruning) makes a new model
        next(net.parameters()).mul_(1.5)
    with torch.inference_mode():
        net(x)
        net(tiny_input(3, 4, dtype=torch.float32, batch=1).repeat(1, 1, 1, 1, 2))  # another tile shape
    assert len(exports) == 4


def test_the_network_is_walked_once_per_change_not_per_call(exports, monkeypatch):
    """Listing every parameter and buffer walks every module (~0.5 ms on a 4-stage U-Net, done twice per call
    before): listed once, and again only after the tensors were replaced (surgery here)."""
    walks = []
    listed = runtime_forward._tensors
    monkeypatch.setattr(runtime_forward, "_tensors", lambda module: walks.append(1) or listed(module))
    net = use_runtime(make_resizable(tiny_net("plain", 3, 4, dtype=torch.float32)).eval(), "onnxruntime")
    x = tiny_input(3, 4, dtype=torch.float32, batch=1)
    with torch.inference_mode():
        for _ in range(4):
            net(x)
    assert (len(walks), len(exports)) == (1, 1)
    remove_channels(net, find_groups(net)[0], [0])
    with torch.no_grad():
        expected = net(x)
    with torch.inference_mode():
        got = net(x)
        net(x)
    assert (len(walks), len(exports)) == (2, 2)
    assert float((got - expected).abs().max()) < 1e-4 * float(expected.abs().max())


def test_the_cache_is_bounded(exports, monkeypatch):
    monkeypatch.setattr(runtime_forward, "CACHE_SIZE", 2)
    net = use_runtime(tiny_net("plain", 3, 3, dtype=torch.float32).eval(), "onnxruntime")
    with torch.inference_mode():
        for depth in (8, 16, 24, 8):
            net(torch.randn(1, 2, depth, 8, 8))
    assert len(net._runners) == 2 and len(exports) == 4  # the first shape was dropped and made again


@pytest.mark.parametrize("backend, precision, message", [
    ("tensorrt", "f32", "nnUNet_pruning_backend='tensorrt' is not one of auto, torch, onnxruntime, openvino"),
    ("auto", "fp16", "nnUNet_pruning_precision='fp16' is not one of f32, bf16"),
    ("onnxruntime", "bf16", "nnUNet_pruning_precision=bf16 needs nnUNet_pruning_backend=openvino")])
def test_bad_settings_are_one_line(monkeypatch, backend, precision, message):
    monkeypatch.setenv("nnUNet_pruning_backend", backend)
    monkeypatch.setenv("nnUNet_pruning_precision", precision)
    with pytest.raises(PruningError, match=message.replace("(", r"\(")):
        runtime_setting()


def test_default_is_auto_and_a_named_backend_is_kept(monkeypatch):
    monkeypatch.delenv("nnUNet_pruning_backend", raising=False)
    monkeypatch.delenv("nnUNet_pruning_precision", raising=False)
    assert runtime_setting() == ("auto", "f32")
    monkeypatch.setenv("nnUNet_pruning_backend", " Torch ")
    assert runtime_setting() == ("torch", "f32")
    monkeypatch.setenv("nnUNet_pruning_backend", "onnxruntime")
    net = use_runtime(copy.deepcopy(tiny_net("plain", 3, 3, dtype=torch.float32)))
    assert net.runtime_backend == "onnxruntime"
    with pytest.raises(PruningError, match="backend auto runs f32; name openvino for bf16"):
        use_runtime(net, "auto", "bf16")


def test_auto_choice_runs_each_candidate_then_keeps_the_fastest_median():
    choice = AutoChoice(("torch", "openvino"), calls=3)
    seconds = {"torch": [9.0, 1.0, 1.2, 5.0], "openvino": [30.0, 0.9, 3.0, 1.1]}  # the first of each: warm-up
    ran, chosen = [], None
    while chosen is None:
        backend = choice.backend()
        counted = choice.begin(backend)
        ran.append(backend)
        if counted:
            chosen = choice.record(backend, seconds[backend][choice.started[backend] - 1])
    assert ran == ["torch"] * 4 + ["openvino"] * 4 and chosen == "openvino"  # medians 1.2 vs 1.1
    assert choice.summary() == "torch 1200.0 ms, openvino 1100.0 ms"
    assert choice.backend() == "openvino" and not choice.begin("openvino")
    assert AutoChoice(("torch",)).backend() == "torch" and not AutoChoice(("torch",)).begin("torch")


class _Clock:
    """perf_counter of core/runtime_forward, advanced by the test: a call on a backend takes ``cost[backend][0]``
    seconds, the caller's work after it ``cost[backend][1]``."""

    def __init__(self, monkeypatch, cost: dict):
        self.now, self.cost, self.ran = 0.0, cost, None
        monkeypatch.setattr(runtime_forward, "time", SimpleNamespace(perf_counter=lambda: self.now))  # its clock only
        run_on = RuntimeForward._run_on

        def timed(net, backend, x):
            self.ran = backend
            self.now += self.cost[backend][0]
            return run_on(net, backend, x)
        monkeypatch.setattr(RuntimeForward, "_run_on", timed)

    def call(self, net, x):
        self.ran = None
        with torch.inference_mode():
            out = net(x)
        backend = self.ran or "torch"  # (None: a run that is not auto's, PyTorch's own forward)
        self.now += self.cost[backend][1]
        return backend, out


@pytest.mark.parametrize("faster", ["onnxruntime", "torch"])
def test_auto_times_each_backend_where_it_runs_and_keeps_the_faster(monkeypatch, exports, faster):
    monkeypatch.setattr(runtimes, "AUTO", ("onnxruntime",))  # (installed wherever these tests run)
    # torch: 1.0 s a call; onnxruntime 0.8 s, but the caller's work after it takes 0.7 s (torch's: 0.2 or 0.9 s)
    clock = _Clock(monkeypatch, {"torch": (1.0, 0.9 if faster == "onnxruntime" else 0.2), "onnxruntime": (0.8, 0.7)})
    lines = []
    net = use_runtime(tiny_net("plain", 3, 4, dtype=torch.float32).eval(), "auto")
    net.runtime_report = lines.append
    x = tiny_input(3, 4, dtype=torch.float32, batch=1)
    with torch.no_grad():
        expected = net(x)  # not inference mode: PyTorch, no trial
    ran = []
    for _ in range(12):
        backend, out = clock.call(net, x)
        ran.append(backend)
        assert float((out - expected).abs().max()) < 1e-4 * float(expected.abs().max())
    assert ran == ["torch"] * 4 + ["onnxruntime"] * 4 + [faster] * 4
    assert exports == [tuple(x.shape)]
    shape = "x".join(map(str, x.shape))
    assert lines == [f"nnunet-pruning: backend auto: {faster} for input {shape} ({torch.get_num_threads()} threads; "
                     f"median per call, the caller's work between calls included: torch "
                     f"{sum(clock.cost['torch']) * 1e3:.1f} ms, onnxruntime 1500.0 ms)"]
    assert net.auto_choices() == {(tuple(x.shape), torch.get_num_threads()): faster}
    assert backend_in_use(net) == f"auto: {faster}"
    assert len(net._runners) == (faster == "onnxruntime")  # the loser keeps no compiled model
    assert not hasattr(copy.deepcopy(net), "_choices")  # a copy measures for itself


def test_auto_counts_no_call_across_a_change_of_fold_or_shape(monkeypatch, exports):
    """nnU-Net's ensemble loads each fold before predicting with it: the gap from one fold's last call to the next
    fold's first call is not a call's time; each fold (and each tile shape) has its own trial."""
    monkeypatch.setattr(runtimes, "AUTO", ("onnxruntime",))
    clock = _Clock(monkeypatch, {"torch": (0.6, 0.4), "onnxruntime": (0.3, 0.2)})
    folds = [_pruned(1), _pruned(2)]
    states = [f.state_dict() for f in folds]
    net = use_runtime(make_resizable(tiny_net("plain", 3, 4, dtype=torch.float32)).eval(), "auto")
    net.runtime_report = lambda line: None
    x = tiny_input(3, 4, dtype=torch.float32, batch=1)
    for _ in range(3):  # cases
        for state in states:
            net.load_state_dict(state)
            clock.now += 100.0  # the fold's weights are loaded, a case read: a long gap, in nobody's call
            for _ in range(4):  # tiles
                clock.call(net, x)
    choices = list(net._choices.values())
    assert len(choices) == 2 and [c.chosen for c in choices] == ["onnxruntime", "onnxruntime"]
    assert all(max(max(v) for v in c.seconds.values()) <= 1.0 for c in choices)  # no gap counted
    assert sorted(choices[0].seconds["torch"]) == pytest.approx([0.6, 1.0, 1.0])  # the fold's last call: alone
    assert backend_in_use(net) == "auto: onnxruntime"
    clock.call(net, x.repeat(1, 1, 1, 1, 2))  # another tile shape: a trial of its own, on PyTorch first
    assert len(net._choices) == 3 and backend_in_use(net) == "auto: onnxruntime"


def test_auto_leaves_out_work_between_calls_that_outlasts_the_call(monkeypatch, exports):
    """One-tile volumes without mirroring: one call per volume, the volume's export and the next one's
    preprocessing between calls; that is not the backend's time, the calls alone are compared."""
    monkeypatch.setattr(runtimes, "AUTO", ("onnxruntime",))
    clock = _Clock(monkeypatch, {"torch": (0.5, 30.0), "onnxruntime": (0.4, 60.0)})
    net = use_runtime(tiny_net("plain", 3, 3, dtype=torch.float32).eval(), "auto")
    net.runtime_report = lambda line: None
    for _ in range(9):
        clock.call(net, tiny_input(3, 3, dtype=torch.float32, batch=1))
    (choice,) = net._choices.values()
    assert choice.seconds == {"torch": pytest.approx([0.5] * 3), "onnxruntime": pytest.approx([0.4] * 3)}
    assert choice.chosen == "onnxruntime"


def test_auto_without_a_runtime_installed_is_pytorch_without_a_trial(monkeypatch, exports):
    monkeypatch.setattr(runtimes, "AUTO", ())
    net = use_runtime(tiny_net("plain", 3, 3, dtype=torch.float32).eval(), "auto")
    with torch.inference_mode():
        for _ in range(10):
            net(tiny_input(3, 3, dtype=torch.float32, batch=1))
    assert exports == [] and backend_in_use(net) == "auto: torch" and not hasattr(net, "_open_call")


@pytest.mark.parametrize("trainer", ["nnUNetTrainerSTAMP", "nnUNetTrainerFlatUNet"])
def test_this_packages_trainers_build_networks_on_the_chosen_backend(monkeypatch, capsys, trainer):
    """What nnUNetv2_predict gets from the trainers: the variable's backend; a bad value is one line, exit 2."""
    from nnunet_pruning.adapter.architectures import unet_spec
    from nnunet_pruning.adapter.networks import resolve_trainer

    cls = resolve_trainer(trainer)
    build = lambda: cls.build_network_architecture(None, unet_spec("plain", 3, 3), 1, 2, False)  # noqa: E731
    from nnunet_pruning.core.cuda_inference import GraphedForward

    monkeypatch.delenv("nnUNet_pruning_backend", raising=False)
    net = build()
    assert net.runtime_backend == "auto" and isinstance(net, GraphedForward)  # (graphs: only on CUDA, when on)
    monkeypatch.setenv("nnUNet_pruning_cuda_graphs", "sometimes")
    with pytest.raises(SystemExit):
        build()
    assert "nnunet-pruning: error: nnUNet_pruning_cuda_graphs='sometimes' is neither on nor off" in \
        capsys.readouterr().err
    monkeypatch.delenv("nnUNet_pruning_cuda_graphs")
    monkeypatch.setenv("nnUNet_pruning_backend", "onnxruntime")
    assert build().runtime_backend == "onnxruntime"
    monkeypatch.setenv("nnUNet_pruning_backend", "cuda-graphs")
    with pytest.raises(SystemExit) as e:
        build()
    assert e.value.code == 2
    assert capsys.readouterr().err == ("nnunet-pruning: error: nnUNet_pruning_backend='cuda-graphs' is not one of "
                                       "auto, torch, onnxruntime, openvino\n")
