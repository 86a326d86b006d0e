"""oneDNN convolutions on the CPU (core/onednn.py): same numbers, same state dict, the fast kernel chosen."""

import copy
import pickle

import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from nnunet_pruning.core.onednn import OneDnnConv3d, onednn_applies, traced_onednn_conv3d, use_onednn_convolutions

from tests.tiny import tiny_input, tiny_net


def _ops(fn) -> set[str]:
    with profile(activities=[ProfilerActivity.CPU]) as p:
        fn()
    return {e.key for e in p.key_averages()}


def test_every_plain_conv3d_is_swapped_in_place_and_keeps_its_state_dict():
    net = tiny_net("plain", 3, 4, dtype=torch.float32)
    keys, params = list(net.state_dict()), [id(p) for p in net.parameters()]
    assert use_onednn_convolutions(net) is net
    convs = [m for m in net.modules() if isinstance(m, nn.Conv3d)]
    assert convs and all(type(m) is OneDnnConv3d for m in convs)
    assert list(net.state_dict()) == keys and [id(p) for p in net.parameters()] == params
    assert any(type(m) is OneDnnConv3d for m in pickle.loads(pickle.dumps(net)).modules())


def test_2d_networks_are_left_alone():
    net = use_onednn_convolutions(tiny_net("plain", 2, 3, dtype=torch.float32))
    assert not any(type(m) is OneDnnConv3d for m in net.modules())


@pytest.mark.parametrize("architecture", ["plain", "resenc"])
def test_same_output_and_gradients_as_pytorchs_own_choice(architecture):
    net = tiny_net(architecture, 3, 4, dtype=torch.float32)
    fast = use_onednn_convolutions(copy.deepcopy(net))
    x = tiny_input(3, 4, dtype=torch.float32)
    for model in (net, fast):
        model.eval()
    with torch.no_grad():
        torch.testing.assert_close(fast(x[:1]), net(x[:1]), atol=1e-5, rtol=1e-4)  # batch 1: the predictor
    for model in (net, fast):
        model.train()
        model(x).float().pow(2).mean().backward()
    for a, b in zip(net.parameters(), fast.parameters()):
        if a.grad is not None:
            torch.testing.assert_close(b.grad, a.grad, atol=1e-5, rtol=1e-4)


def test_a_thin_batch1_conv_takes_onednn_not_the_slow_fallback():
    conv = nn.Conv3d(16, 16, 3, padding=1)  # 1 x 16 x 32 x 32 = 16384 < 20480: PyTorch picks slow_conv3d
    x = torch.randn(1, 16, 32, 32, 32)
    with torch.no_grad():
        default = _ops(lambda: conv(x))
        use_onednn_convolutions(conv)
        fast = _ops(lambda: conv(x))
    assert any("slow_conv3d" in op for op in default) and not any("mkldnn" in op for op in default)
    assert "aten::mkldnn_convolution" in fast and not any("slow_conv3d" in op for op in fast)


def test_where_it_does_not_apply():
    x = torch.randn(1, 4, 8, 8, 8)
    conv = use_onednn_convolutions(nn.Conv3d(4, 4, 3, padding=1))
    assert onednn_applies(conv, x)
    head = use_onednn_convolutions(nn.Conv3d(4, 3, 1))  # 1x1x1 heads: the fallback is faster
    assert not onednn_applies(head, x)
    assert not onednn_applies(conv, x.double())
    assert not onednn_applies(use_onednn_convolutions(nn.Conv3d(4, 4, 3, padding=1, padding_mode="reflect")), x)
    assert not onednn_applies(use_onednn_convolutions(nn.Conv3d(4, 4, 3, padding="same")), x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not onednn_applies(conv, x)
    with torch.backends.mkldnn.flags(enabled=False):
        assert not onednn_applies(conv, x)
    torch.testing.assert_close(head(x), nn.functional.conv3d(x, head.weight, head.bias))


def test_compiled_after_a_stock_network_gives_the_eager_output():
    # tests/scripts has the predictor case
    stock = tiny_net("plain", 3, 3, dtype=torch.float32).eval()
    fast = use_onednn_convolutions(copy.deepcopy(stock))
    x = tiny_input(3, 3, dtype=torch.float32, batch=1)
    with torch.no_grad():
        for net in (stock, fast):
            torch.testing.assert_close(torch.compile(net)(x), stock(x), atol=1e-4, rtol=1e-4)


@pytest.mark.skipif(traced_onednn_conv3d is None, reason="PyTorch < 2.4 has no torch.library.custom_op")
def test_compiled_inference_keeps_onednn_in_one_graph():
    stock = tiny_net("plain", 3, 3, dtype=torch.float32).eval()
    compiled = torch.compile(use_onednn_convolutions(copy.deepcopy(stock)), fullgraph=True)  # no graph break
    x = tiny_input(3, 3, dtype=torch.float32, batch=1)
    for layout in (torch.contiguous_format, torch.channels_last_3d):
        with torch.inference_mode():
            torch.testing.assert_close(compiled(x.contiguous(memory_format=layout)), stock(x), atol=1e-4, rtol=1e-4)
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as p:
        compiled(x)
    calls = {e.key: e.count for e in p.key_averages()}
    convs = [m for m in stock.modules() if type(m) is nn.Conv3d]
    assert calls["nnunet_pruning::onednn_conv3d"] == sum(m.kernel_size != (1, 1, 1) for m in convs) > 0
    assert calls.get("aten::slow_conv3d", 0) <= sum(m.kernel_size == (1, 1, 1) for m in convs)  # heads at most


@pytest.mark.skipif(traced_onednn_conv3d is None, reason="PyTorch < 2.4 has no torch.library.custom_op")
def test_traced_operator_says_its_output_shape_and_layout_to_the_compiler():
    for stride, padding, dilation, layout in (((1, 1, 1), (1, 1, 1), (1, 1, 1), torch.contiguous_format),
                                              ((2, 2, 1), (1, 0, 1), (1, 1, 2), torch.channels_last_3d)):
        x = torch.randn(1, 4, 9, 8, 7).contiguous(memory_format=layout)
        args = (x, torch.randn(6, 4, 3, 3, 3), torch.randn(6), list(padding), list(stride), list(dilation), 1)
        torch.library.opcheck(traced_onednn_conv3d, args)  # fake vs real: shapes, strides, schema
        torch.testing.assert_close(traced_onednn_conv3d(*args), nn.functional.conv3d(
            x, args[1], args[2], stride, padding, dilation), atol=1e-5, rtol=1e-4)


def test_compiled_with_gradients_takes_pytorchs_convolution():
    # the traced operator has no backward: where gradients flow, the compiled graph keeps PyTorch's convolution
    net = tiny_net("plain", 3, 3, dtype=torch.float32).train()
    fast = use_onednn_convolutions(copy.deepcopy(net))
    x = tiny_input(3, 3, dtype=torch.float32)
    net(x).float().pow(2).mean().backward()
    torch.compile(fast)(x).float().pow(2).mean().backward()
    for a, b in zip(net.parameters(), fast.parameters()):
        if a.grad is not None:
            torch.testing.assert_close(b.grad, a.grad, atol=1e-4, rtol=1e-3)
