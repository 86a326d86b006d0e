"""GPU inference (core/cuda_inference.py), tested on the CPU: the voxel-parallel norm equals nn.InstanceNorm*d,
nothing changes on the CPU, and the graph logic (one capture per tile shape and layout, none in training) runs
with the CUDA capture replaced by a fake. Its speed on a GPU is not measured here."""

import contextlib
import copy
import pickle
import random

import pytest
import torch
from torch import nn

from nnunet_pruning.core import cuda_inference
from nnunet_pruning.core.cuda_inference import (GraphedForward, VoxelParallelInstanceNorm, autocast_cache_off,
                                                cuda_inference_enabled, instance_norm_over_voxels,
                                                use_cuda_inference)
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.groups import find_groups
from nnunet_pruning.core.resizable import make_resizable
from nnunet_pruning.core.surgery import remove_channels

from tests.tiny import tiny_input, tiny_net


@pytest.mark.parametrize("norm_class, shape", [(nn.InstanceNorm3d, (2, 5, 6, 7, 8)), (nn.InstanceNorm2d, (2, 5, 9, 7))])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_the_voxel_parallel_norm_is_instance_norm(norm_class, shape, dtype):
    norm = norm_class(5, eps=1e-3, affine=True).to(dtype)
    with torch.no_grad():
        norm.weight.copy_(1 + torch.randn(5, dtype=dtype))
        norm.bias.copy_(torch.randn(5, dtype=dtype))
    x = 3 + 2 * torch.randn(shape, dtype=dtype)
    got = instance_norm_over_voxels(x, norm.weight, norm.bias, norm.eps)
    assert got.dtype == dtype and torch.allclose(got, norm(x), atol=1e-5 if dtype == torch.float32 else 1e-6)
    plain = norm_class(5)
    assert torch.allclose(instance_norm_over_voxels(x, None, None, plain.eps), plain(x), atol=1e-5)


def test_half_precision_input_is_normalised_in_float32():
    x = (3 + 2 * torch.randn(1, 4, 8, 8, 8)).half()
    got = instance_norm_over_voxels(x, None, None, 1e-5)
    assert got.dtype == torch.float16
    assert torch.allclose(got.float(), nn.InstanceNorm3d(4)(x.float()), atol=4e-3)


def test_nothing_changes_on_the_cpu():
    net = tiny_net("plain", 3, 4, dtype=torch.float32).eval()
    x = tiny_input(3, 4, dtype=torch.float32, batch=1)
    with torch.inference_mode():
        expected = net(x)
    keys = list(net.state_dict())
    assert use_cuda_inference(net) is net and isinstance(net, GraphedForward)
    norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm3d)]
    assert norms and all(isinstance(m, VoxelParallelInstanceNorm) for m in norms)
    assert type(pickle.loads(pickle.dumps(norms[0]))) is type(norms[0])  # a module-level class
    assert list(net.state_dict()) == keys
    with torch.inference_mode():
        assert torch.equal(net(x), expected)
    assert "_graphs" not in net.__dict__


def _pruned_state(seed):
    net = tiny_net("plain", 3, 4, seed=0, dtype=torch.float32)
    rng = random.Random(seed)
    for group in find_groups(net):
        if group.width > 1:
            remove_channels(net, group, rng.sample(range(group.width), rng.randint(1, group.width - 1)))
    return net.state_dict()


def test_one_capture_per_tile_shape_and_layout_only_in_inference(fake_cuda, capsys):
    reference = tiny_net("plain", 3, 4, dtype=torch.float32).eval()
    net = use_cuda_inference(make_resizable(tiny_net("plain", 3, 4, dtype=torch.float32))).eval()
    x = tiny_input(3, 4, dtype=torch.float32, batch=1)
    with torch.inference_mode():
        got = net(x)
        net(x)
    assert fake_cuda == [tuple(x.shape)]
    shape = "x".join(map(str, x.shape))  # one line per capture: what it holds on the GPU
    assert capsys.readouterr().out == (f"nnunet-pruning: CUDA graph captured for input {shape} (float32): 3 MiB of GPU "
                                       f"memory reserved for it (1 of at most 6 graphs kept)\n")
    with torch.no_grad():  # the voxel-parallel norms inside the captured forward: PyTorch's numbers
        assert torch.allclose(got, reference(x), atol=1e-5)
    with torch.no_grad():
        net(x)  # gradients off but not inference mode (training's validation step): no graph
    net.train()
    with torch.inference_mode():
        net(x)
    net.eval()
    assert len(fake_cuda) == 1
    with torch.inference_mode():
        net(torch.cat([x, x], dim=2))  # another tile shape
        net.load_state_dict(reference.state_dict())  # the same shapes: copied in place, the graph stays
        net(x)
    assert len(fake_cuda) == 2
    net.load_state_dict(_pruned_state(1))  # a fold pruned to other shapes: captured anew
    with torch.inference_mode():
        net(x)
    assert len(fake_cuda) == 3


def test_graphs_are_bounded_and_the_variable_turns_them_off(fake_cuda, monkeypatch):
    monkeypatch.setattr(cuda_inference, "MAX_GRAPHS", 2)
    net = use_cuda_inference(tiny_net("plain", 3, 3, dtype=torch.float32)).eval()
    with torch.inference_mode():
        for depth in (8, 16, 24):
            net(torch.randn(1, 2, depth, 8, 8))
    assert len(net._graphs) == 2 and len(fake_cuda) == 3
    monkeypatch.setenv("nnUNet_pruning_cuda_graphs", "0")
    with torch.inference_mode():
        net(torch.randn(1, 2, 32, 8, 8))
    assert len(fake_cuda) == 3
    monkeypatch.setenv("nnUNet_pruning_cuda_graphs", "maybe")
    with pytest.raises(PruningError, match="nnUNet_pruning_cuda_graphs='maybe' is neither on nor off; set it to 1 or 0"):
        cuda_inference_enabled()
    monkeypatch.delenv("nnUNet_pruning_cuda_graphs")
    assert cuda_inference_enabled() is False  # off until measured on a GPU


def test_deep_supervision_is_never_graphed(fake_cuda):
    net = use_cuda_inference(tiny_net("plain", 3, 4, deep_supervision=True, dtype=torch.float32)).eval()
    with torch.inference_mode():
        out = net(tiny_input(3, 4, dtype=torch.float32, batch=1))
    assert isinstance(out, (list, tuple)) and fake_cuda == []


def test_a_2d_network_is_graphed_per_tile_shape_too(fake_cuda):
    reference = tiny_net("resenc", 2, 3, dtype=torch.float32).eval()
    net = use_cuda_inference(copy.deepcopy(reference))
    x = tiny_input(2, 3, dtype=torch.float32, batch=1)
    with torch.inference_mode():
        got = net(x)
        net(x.flip(-1))  # mirroring: the same graph
    with torch.no_grad():
        assert torch.allclose(got, reference(x), atol=1e-5)
    assert fake_cuda == [tuple(x.shape)] and x.dim() == 4


def test_a_copy_of_a_graphed_network_captures_its_own(fake_cuda):
    net = use_cuda_inference(tiny_net("plain", 3, 3, dtype=torch.float32)).eval()
    x = tiny_input(3, 3, dtype=torch.float32, batch=1)
    with torch.inference_mode():
        net(x)
    twin = copy.deepcopy(net)  # as a latency timing or a compiled twin copies it: a CUDA graph cannot be copied
    assert "_graphs" in net.__dict__ and "_graphs" not in twin.__dict__
    with torch.inference_mode():
        assert torch.equal(twin(x), net(x))
    assert len(fake_cuda) == 2


def _doubled_weight_changes_the_output(uncached: bool) -> bool:
    """Under CPU autocast (bf16) without inference mode, where PyTorch caches the casts of leaf weights: whether
    doubling a conv's weight in place within one autocast context changes its output (a cached cast: no)."""
    conv = nn.Conv3d(2, 3, 1)
    x = torch.randn(1, 2, 3, 3, 3)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        with autocast_cache_off() if uncached else contextlib.nullcontext():
            before = conv(x)
            conv.weight.mul_(2)
            after = conv(x)
        assert torch.is_autocast_cache_enabled()  # restored
    return not torch.equal(before, after)


def test_autocast_casts_are_not_cached_where_graphs_are_captured():
    """A cached cast captured into a CUDA graph would be read after the autocast context that held it ended
    (nnU-Net's predictor opens one per case and fold); uncached, the casts follow the weights."""
    assert not _doubled_weight_changes_the_output(uncached=False)  # what the cache does (the test can fail)
    assert _doubled_weight_changes_the_output(uncached=True)


class _StandInCuda:
    """What ``_capture`` uses of ``torch.cuda``, on the CPU: records where each forward ran; a graph's replay
    recomputes nothing (the test sees what ``replay`` copies in and out)."""

    def __init__(self):
        self.where, self.replays, self._reserved = "main stream", 0, iter([10 * 2 ** 20, 25 * 2 ** 20])
        stand_in = self

        class Stream:
            def wait_stream(self, other):
                pass

        class CUDAGraph:
            def replay(self):
                stand_in.replays += 1

        self.Stream, self.CUDAGraph = Stream, CUDAGraph

    def device(self, device):
        return contextlib.nullcontext()

    def memory_reserved(self, device):
        return next(self._reserved)

    def current_stream(self):
        return self.Stream()

    @contextlib.contextmanager
    def _in(self, where):
        self.where = where
        yield
        self.where = "main stream"

    def stream(self, stream):
        return self._in("side stream")

    def graph(self, graph, capture_error_mode="global"):
        self.capture_error_mode = capture_error_mode
        return self._in("capture")


def test_the_capture_warms_up_on_a_side_stream_then_replays_into_its_static_input():
    cuda, calls = _StandInCuda(), []

    def forward(t):
        calls.append((cuda.where, torch.is_autocast_cache_enabled(), t))
        return t * 2
    x = torch.randn(1, 2, 4, 4, 4)
    replay, held = cuda_inference._capture(forward, x, cuda)
    assert [(where, cached) for where, cached, _ in calls] == [("side stream", False), ("side stream", False),
                                                               ("capture", False)]
    static_input = calls[0][2]
    assert all(t is static_input for _, _, t in calls) and static_input is not x and torch.equal(static_input, x)
    assert torch.is_autocast_cache_enabled() and held == 15 * 2 ** 20
    assert cuda.capture_error_mode == "thread_local"  # nnU-Net's predictor slices tiles in a thread beside it
    new = torch.randn_like(x)
    first, second = replay(new), replay(new)
    assert cuda.replays == 2 and torch.equal(static_input, new)  # the new tile copied into the graph's input
    assert torch.equal(first, 2 * x) and first is not second  # each a copy of the graph's output


def test_compiled_the_norms_trace_into_one_graph_and_no_cuda_graph_is_captured(fake_cuda):
    """``nnUNet_compile=T``: torch.compile traces the voxel-parallel norms (no graph break) and the CUDA graphs
    stand aside (compiled code is not captured a second time)."""
    from torch import _dynamo

    net = use_cuda_inference(tiny_net("plain", 2, 2, dtype=torch.float32)).eval()
    x = tiny_input(2, 2, dtype=torch.float32, batch=1)
    with torch.inference_mode():
        explained = _dynamo.explain(net)(x)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons
    assert fake_cuda == []


def test_where_the_tensors_lie_is_read_once_per_change_not_per_call(fake_cuda, monkeypatch):
    """nnU-Net calls the network 8 times per tile with mirroring: reading every tensor's address per call cost
    ~0.5 ms (plain 6-stage) to ~1.2 ms (ResEnc). It is read again only after the tensors were replaced: a fold's
    load_state_dict, surgery, a move; a graph is captured anew only where they moved or changed shape."""
    reads = []
    real_layout = cuda_inference._layout
    monkeypatch.setattr(cuda_inference, "_layout", lambda module: reads.append(1) or real_layout(module))
    reference = tiny_net("plain", 3, 4, dtype=torch.float32).eval()
    net = use_cuda_inference(make_resizable(copy.deepcopy(reference))).eval()
    x = tiny_input(3, 4, dtype=torch.float32, batch=1)
    with torch.inference_mode():
        for _ in range(5):
            net(x)
    assert (len(reads), len(fake_cuda)) == (1, 1)
    net.load_state_dict(reference.state_dict())  # another fold, the same shapes: copied in place
    with torch.inference_mode():
        net(x)
        net(x)
    assert (len(reads), len(fake_cuda)) == (2, 1)
    group = find_groups(net)[0]
    remove_channels(net, group, [0])  # surgery: other shapes
    with torch.inference_mode():
        got = net(x)
    assert (len(reads), len(fake_cuda)) == (3, 2)
    with torch.inference_mode():
        assert torch.equal(got, net(x))
    net.double()  # a move (another dtype): new tensors
    with torch.inference_mode():
        net(x.double())
    assert (len(reads), len(fake_cuda)) == (4, 3)


def test_folds_pruned_to_other_shapes_keep_their_graphs_across_cases(fake_cuda):
    """nnU-Net's predictor loads every fold before every case, in inference mode: a fold pruned to other shapes
    than the last is put back into its own tensors, so its graph replays (nnUNetv2_predict's 5 folds, 3 cases: 5
    captures, not 15), with that fold's weights (each graph's output is that fold's network's)."""
    folds = [_pruned_state(seed) for seed in (1, 2, 3, 4, 5)]
    references = []
    for state in folds:
        reference = make_resizable(tiny_net("plain", 3, 4, dtype=torch.float32)).eval()
        reference.load_state_dict(state)
        references.append(reference)
    net = use_cuda_inference(make_resizable(tiny_net("plain", 3, 4, dtype=torch.float32))).eval()
    x = tiny_input(3, 4, dtype=torch.float32, batch=1)
    for case in range(3):
        for state, reference in zip(folds, references):
            with torch.inference_mode():
                net.load_state_dict(state)
                got = net(x + case)
            with torch.no_grad():
                assert torch.allclose(got, reference(x + case), atol=1e-5)
    assert len(fake_cuda) == 5
    net.load_state_dict(folds[0])  # a trainer's load (not inference mode): nothing kept
    assert net.__dict__["_kept_tensors"] == {}
