"""Pruned networks under ``torch.compile``, as nnU-Net's predictor runs them with ``nnUNet_compile=1``.

The predictor compiles the network once and then loads each fold's weights into ``network._orig_mod``; with
folds pruned to different shapes, the resizable network changes its parameter shapes under the compiled
wrapper. Both folds must give what the eager network gives. (A 3-stage 3D net: one CPU compile and one recompile.)
"""

import copy

import torch

from nnunet_pruning.core.groups import find_groups
from nnunet_pruning.core.resizable import make_resizable
from nnunet_pruning.core.surgery import remove_channels

from tests.tiny import tiny_input, tiny_net


def _pruned(net, step):
    pruned = copy.deepcopy(net)
    for group in find_groups(pruned):
        if group.width > 1:
            remove_channels(pruned, group, range(0, group.width, step))
    return pruned


def test_pruned_folds_give_the_eager_output_when_compiled():
    net = tiny_net("plain", 3, 3, dtype=torch.float32).eval()
    fold_a, fold_b = _pruned(net, 2), _pruned(net, 3)  # two different shapes
    x = tiny_input(3, 3, dtype=torch.float32, batch=1)
    with torch.no_grad():
        expected = {"a": fold_a(x), "b": fold_b(x)}
    network = make_resizable(copy.deepcopy(net)).eval()  # what the predictor builds: the unpruned net
    network.load_state_dict(fold_a.state_dict())
    compiled = torch.compile(network)
    with torch.no_grad():
        got_a = compiled(x)
        compiled._orig_mod.load_state_dict(fold_b.state_dict())  # the predictor's next fold
        got_b = compiled(x)
    torch.testing.assert_close(got_a, expected["a"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got_b, expected["b"], atol=1e-4, rtol=1e-4)
    assert got_a.shape == got_b.shape
