import pytest
from torch import nn

from nnunet_pruning.adapter.architectures import build_unet, unet_spec
from nnunet_pruning.adapter.flat import flat_arch_kwargs
from nnunet_pruning.core.measure import conv_widths, count_gflops, count_params, measure_network


def test_params_deduplicate_aliased_modules():
    net = build_unet(unet_spec("plain", dim=2, n_stages=3, base_width=4))
    assert count_params(net) == sum(p.numel() for p in set(net.parameters()))
    assert count_params(net) < sum(t.numel() for t in net.state_dict().values())  # aliases repeat tensors


def test_gflops_of_one_conv_is_analytic():
    conv = nn.Conv3d(2, 4, 3, padding=1, bias=False)
    expected = 2 * 2 * 4 * 27 * 8 * 8 * 8  # 2 FLOPs per multiply-add
    assert count_gflops(conv, 2, (8, 8, 8)) == pytest.approx(expected / 1e9)


def test_gflops_do_not_touch_the_model():
    net = build_unet(unet_spec("plain", dim=2, n_stages=3, base_width=4))
    weight = net.encoder.stages[0][0].convs[0].conv.weight
    count_gflops(net, 1, (32, 32))
    assert weight.device.type == "cpu" and net.encoder.stages[0][0].convs[0].conv.weight is weight


def test_widths_grouped_by_stage():
    net = build_unet(unet_spec("plain", dim=2, n_stages=3, base_width=4))
    widths = conv_widths(net)
    assert widths["encoder.stages.0"] == [4, 4]
    assert widths["encoder.stages.2"] == [16, 16]
    assert widths["decoder.transpconvs.0"] == [8]
    assert widths["decoder.stages.1"] == [4, 4]
    assert widths["decoder.seg_layers.1"] == [3]


def test_resenc_widths_include_stem():
    net = build_unet(unet_spec("resenc", dim=2, n_stages=3, base_width=4))
    assert conv_widths(net)["encoder.stem"] == [4]


def test_flat_32_vs_stock_matches_the_thesis_claim():
    """4-stage 3D 32-64-128-256 at 64^3: Flat-32 is >= 11.5x smaller with >= 35% fewer GFLOPs."""
    spec = unet_spec("plain", dim=3, n_stages=4)
    stock = measure_network(build_unet(spec), (64, 64, 64))
    spec.network_arch_init_kwargs = flat_arch_kwargs(spec.network_arch_class_name, spec.network_arch_init_kwargs)
    flat = measure_network(build_unet(spec), (64, 64, 64))
    assert stock["params"] == 5_603_177 and flat["params"] == 469_545  # methods.md: 5.60 M and 0.47 M
    assert stock["gflops"] == pytest.approx(112.0, abs=0.05) and flat["gflops"] == pytest.approx(69.35, abs=0.05)
    assert stock["params"] / flat["params"] >= 11.5
    assert 1 - flat["gflops"] / stock["gflops"] >= 0.35
