import pytest
import torch
from torch import nn

from nnunet_pruning.adapter.architectures import build_unet, unet_spec
from nnunet_pruning.adapter.flat import flat_arch_kwargs
from nnunet_pruning.core.groups import find_groups
from nnunet_pruning.core.measure import conv_voxels, conv_widths, count_gflops, count_params, measure_network
from nnunet_pruning.core.surgery import remove_channels

from tests.tiny import MATRIX, tiny_input_shape, tiny_net


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


def _flop_counter_gflops(model, input_channels, spatial):
    """FlopCounterMode on a meta copy, every time (what count_gflops reuses between calls)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from nnunet_pruning.core.measure import inference_copy_on_meta

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        inference_copy_on_meta(model)(torch.zeros((1, input_channels, *spatial), device="meta"))
    return counter.get_total_flops() / 1e9


#: each architecture and dimension, deep supervision on and off (the record does not depend on the depth)
LAYOUTS = [(a, d, 4, s) for a, d, n, s in MATRIX if n == 4 and (s or a == "plain")]


@pytest.mark.parametrize("architecture,dim,n_stages,deep_supervision", LAYOUTS)
def test_gflops_after_pruning_are_flop_counter_modes(architecture, dim, n_stages, deep_supervision):
    """The layout's record (made by the first count) gives FlopCounterMode's own total at every later width."""
    net = tiny_net(architecture, dim, n_stages, deep_supervision, dtype=torch.float32)
    spatial = tiny_input_shape(dim, n_stages)[2:]
    first = count_gflops(net, 2, spatial)
    assert first == _flop_counter_gflops(net, 2, spatial)
    for group in find_groups(net)[::2]:
        remove_channels(net, group, range(group.width // 2))
    assert count_gflops(net, 2, spatial) == _flop_counter_gflops(net, 2, spatial) < first
    other = tuple(2 * s for s in spatial)  # another input size: another record
    assert count_gflops(net, 2, other) == _flop_counter_gflops(net, 2, other)


def test_gflops_with_other_counted_operations_are_counted_every_time():
    """A layout whose FLOPs are not all convolutions (a matmul here) is never counted from the record."""
    class ConvThenLinear(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 3, padding=1)
            self.linear = nn.Linear(8, 8)

        def forward(self, x):
            return self.linear(self.conv(x))

    model = ConvThenLinear()
    first = count_gflops(model, 2, (8, 8))
    assert first == _flop_counter_gflops(model, 2, (8, 8))
    model.linear = nn.Linear(8, 16)  # same types and geometry, other FLOPs
    assert count_gflops(model, 2, (8, 8)) == _flop_counter_gflops(model, 2, (8, 8)) > first


def test_conv_voxels_by_name():
    net = build_unet(unet_spec("plain", dim=2, n_stages=3, base_width=4))
    voxels = conv_voxels(net, 1, (32, 32))
    assert voxels["encoder.stages.0.0.convs.0.conv"] == 32 * 32
    assert voxels["encoder.stages.2.0.convs.1.conv"] == 8 * 8
    assert voxels["decoder.transpconvs.0"] == 8 * 8  # a transposed conv: its input's voxels
    assert "decoder.seg_layers.0" not in voxels and voxels["decoder.seg_layers.1"] == 32 * 32  # ds off


def test_gflops_of_a_layout_that_cannot_be_recorded_are_counted():
    """A module whose geometry attribute is unhashable (a dict here): no record, FlopCounterMode every time."""
    conv = nn.Conv2d(2, 4, 3, padding=1, bias=False)
    conv.mode = {"any": "thing"}
    assert count_gflops(conv, 2, (8, 8)) == pytest.approx(2 * 2 * 4 * 9 * 64 / 1e9)
    assert conv_voxels(conv, 2, (8, 8)) == {"": 64}
