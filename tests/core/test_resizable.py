"""checkpoint -> shapes -> network: a network built from the plans loads any pruned state dict."""

import random

import pytest
import torch

from nnunet_pruning.adapter.architectures import build_unet
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.groups import find_groups
from nnunet_pruning.core.resizable import make_resizable
from nnunet_pruning.core.surgery import remove_channels

from tests.tiny import max_difference, outputs, tiny_input, tiny_net, tiny_spec


def _pruned(architecture, dim, n_stages, seed, deep_supervision=False):
    net = tiny_net(architecture, dim, n_stages, deep_supervision, seed=seed).eval()
    rng = random.Random(seed)
    for group in find_groups(net):
        if group.width > 1 and rng.random() < 0.7:
            remove_channels(net, group, rng.sample(range(group.width), rng.randint(1, group.width - 1)))
    return net


def _fresh(architecture, dim, n_stages, deep_supervision=False):
    torch.manual_seed(123)
    return make_resizable(build_unet(tiny_spec(architecture, dim, n_stages), 2, 3, deep_supervision)
                          .double()).eval()


@pytest.mark.parametrize("architecture", ["plain", "resenc"])
@pytest.mark.parametrize("dim", [2, 3])
def test_round_trip_is_identical(architecture, dim):
    pruned = _pruned(architecture, dim, 4, seed=1, deep_supervision=True)
    fresh = _fresh(architecture, dim, 4, deep_supervision=True)
    fresh.load_state_dict(pruned.state_dict())
    x = tiny_input(dim, 4)
    assert max_difference(outputs(pruned, x), outputs(fresh, x)) == 0.0
    assert sum(p.numel() for p in fresh.parameters()) == sum(p.numel() for p in pruned.parameters())


@pytest.mark.parametrize("architecture", ["plain", "resenc"])
def test_one_object_loads_two_differently_pruned_folds(architecture):
    """What nnUNetv2_predict -f 0 1 does: one network, load fold 0, predict, load fold 1, predict."""
    fold0, fold1 = _pruned(architecture, 3, 4, seed=2), _pruned(architecture, 3, 4, seed=3)
    assert [p.shape for p in fold0.parameters()] != [p.shape for p in fold1.parameters()]
    x = tiny_input(3, 4)
    net = _fresh(architecture, 3, 4)
    for source in (fold0, fold1, fold0):
        net.load_state_dict(source.state_dict())
        assert max_difference(outputs(source, x), outputs(net, x)) == 0.0


def test_resize_under_inference_mode_stays_trainable():
    pruned = _pruned("plain", 2, 3, seed=4)
    net = _fresh("plain", 2, 3).train()
    with torch.inference_mode():  # as nnU-Net's predictor loads weights
        net.load_state_dict(pruned.state_dict())
    x = tiny_input(2, 3)
    loss = net(x).square().mean()
    loss.backward()  # fails on inference tensors
    assert all(p.grad is not None for p in net.decoder.stages.parameters())


def test_optimizer_built_before_load_trains_the_loaded_weights():
    """nnU-Net's --c: initialize() builds net + optimizer, then loads weights and optimizer state."""
    source = _pruned("resenc", 2, 3, seed=5).train()
    source_optimizer = torch.optim.SGD(source.parameters(), lr=0.01, momentum=0.99, nesterov=True)
    x = tiny_input(2, 3)
    source(x).square().mean().backward()
    source_optimizer.step()

    net = _fresh("resenc", 2, 3).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.99, nesterov=True)
    net.load_state_dict(source.state_dict())
    optimizer.load_state_dict(source_optimizer.state_dict())
    before = [p.detach().clone() for p in net.parameters()]
    optimizer.zero_grad()
    net(x).square().mean().backward()
    optimizer.step()
    changed = sum(not torch.equal(a, p) for a, p in zip(before, net.parameters()))
    assert changed > len(before) // 2


def test_make_resizable_keeps_identity():
    from dynamic_network_architectures.architectures.unet import PlainConvUNet

    net = tiny_net("plain", 2, 3)
    params = list(net.parameters())
    assert make_resizable(net) is net and isinstance(net, PlainConvUNet)
    assert type(net).__name__ == "ResizablePlainConvUNet" and list(net.parameters()) == params
    assert make_resizable(net) is net


@pytest.mark.parametrize("other", [("plain", 4), ("resenc", 3)], ids=["more-stages", "other-class"])
def test_state_dict_of_another_architecture_is_refused(other):
    net = _fresh("plain", 2, 3)
    state = tiny_net(other[0], 2, other[1]).state_dict()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(PruningError, match=r"checkpoint does not match this ResizablePlainConvUNet: \d+ missing "
                                           r"and \d+ unexpected tensors .* use the matching -p/-tr/-c"):
        net.load_state_dict(state)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
