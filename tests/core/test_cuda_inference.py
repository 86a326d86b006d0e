"""GPU inference (core/cuda_inference.py), tested on the CPU: the voxel-parallel norm equals nn.InstanceNorm*d,
nothing changes on the CPU, and the graph logic (one capture per tile shape and layout, none in training) runs
with the CUDA capture replaced by a fake. Its speed on a GPU is not measured here."""

import copy
import pickle
import random

import pytest
import torch
from torch import nn

from nnunet_pruning.core import cuda_inference
from nnunet_pruning.core.cuda_inference import (GraphedForward, VoxelParallelInstanceNorm,
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
                                       f"memory reserved for it (1 of at most 4 graphs kept)\n")
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
