"""Channel groups cover every conv exactly once, for every architecture in the table."""

import pytest
from torch import nn

from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.groups import find_groups, in_channels, out_channels

from tests.tiny import MATRIX, MATRIX_IDS, tiny_net


def _convs(net):
    return [m for m in net.modules() if isinstance(m, nn.modules.conv._ConvNd)]


@pytest.mark.parametrize("architecture,dim,n_stages,deep_supervision", MATRIX, ids=MATRIX_IDS)
def test_groups_cover_every_channel_once(architecture, dim, n_stages, deep_supervision):
    net = tiny_net(architecture, dim, n_stages, deep_supervision)
    groups = find_groups(net)
    seg_layers = set(net.decoder.seg_layers)
    produced = {}
    consumed = {}
    for g in groups:
        assert len({out_channels(p.conv) for p in g.producers}) == 1, g  # one width per group
        for p in g.producers:
            assert p.conv not in produced, f"{g.name} and {produced.get(p.conv)} both produce one conv"
            produced[p.conv] = g.name
        for c in g.consumers:
            consumed[c.conv] = consumed.get(c.conv, 0) + g.width
    first_conv = _convs(net)[0]
    for conv in _convs(net):
        if conv in seg_layers:
            assert conv not in produced  # segmentation outputs are never prunable
        else:
            assert conv in produced, "every other conv output is prunable"
        if conv is first_conv:
            assert conv not in consumed  # network input channels are never prunable
        else:
            assert consumed[conv] == in_channels(conv), "every input channel is read from exactly one group"
    assert len({g.name for g in groups}) == len(groups)


def test_plain_group_names_and_levels():
    net = tiny_net("plain", 2, 3)
    groups = {g.name: g for g in find_groups(net)}
    assert list(groups) == ["encoder.stages.0.0.convs.0", "encoder.stages.0.0.convs.1",
                            "encoder.stages.1.0.convs.0", "encoder.stages.1.0.convs.1",
                            "encoder.stages.2.0.convs.0", "encoder.stages.2.0.convs.1",
                            "decoder.transpconvs.0", "decoder.stages.0.convs.0", "decoder.stages.0.convs.1",
                            "decoder.transpconvs.1", "decoder.stages.1.convs.0", "decoder.stages.1.convs.1"]
    assert [groups[n].level for n in ("encoder.stages.2.0.convs.1", "decoder.transpconvs.0",
                                      "decoder.stages.1.convs.1")] == [2, 1, 0]
    skip = groups["encoder.stages.0.0.convs.1"]
    # next stage's first conv, and the decoder stage reading the skip after the upsampled channels
    assert [c.offset() for c in skip.consumers] == [0, 4]


def test_resenc_streams_are_single_groups():
    net = tiny_net("resenc", 2, 4)
    groups = {g.name: g for g in find_groups(net)}
    streams = [n for n in groups if n.endswith(".stream")]
    # widths 4-8-16-16: stage 3 keeps stage 2's width, so its skip is only an average pool and both
    # stages share one residual stream
    assert streams == [f"encoder.stages.{s}.stream" for s in range(3)]
    stage0 = groups["encoder.stages.0.stream"]
    assert stage0.producers[0].conv is net.encoder.stem.convs[0].conv  # the stem joins the identity stream
    stage2 = groups["encoder.stages.2.stream"]
    blocks = list(net.encoder.stages[2].blocks) + list(net.encoder.stages[3].blocks)
    assert len(stage2.producers) == 1 + len(blocks)  # projection + every block's conv2
    assert all(f"encoder.stages.{s}.blocks.{b}.conv1" in groups
               for s, stage in enumerate(net.encoder.stages) for b in range(len(stage.blocks)))


def test_unsupported_network():
    with pytest.raises(PruningError, match="Sequential is not a U-Net nnunet_pruning can prune"):
        find_groups(nn.Sequential(nn.Conv2d(1, 2, 3)))
