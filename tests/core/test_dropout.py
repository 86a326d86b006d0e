"""STAMP's targeted dropout: the probability rule and the training-only channel masks."""

import pytest
import torch

from nnunet_pruning.core.dropout import BASE_P, INITIAL_P, TargetedDropout, targeted_probabilities
from nnunet_pruning.core.groups import find_groups

from tests.tiny import tiny_input, tiny_net


def test_probability_rule_by_hand():
    # global ascending order: a0 (0.1), b0 (0.2), a1 (0.3), b1 (0.9), c0 (1.0); N = 5
    # values N-1-position: a0 4, b0 3, a1 2, b1 1, c0 0 -> averages a 3.0, b 2.0, c 0.0
    scores = {"a": torch.tensor([0.1, 0.3]), "b": torch.tensor([0.2, 0.9]), "c": torch.tensor([1.0])}
    p = targeted_probabilities(scores)
    assert p == pytest.approx({"a": BASE_P, "b": BASE_P * 2 / 3, "c": 0.0})


def test_least_important_group_gets_the_base():
    scores = {"x": torch.rand(8), "y": torch.rand(8) + 5}
    p = targeted_probabilities(scores, base=0.2)
    assert p["x"] == pytest.approx(0.2) and p["y"] < 0.2


def test_starts_at_initial_probability_and_is_training_only():
    net = tiny_net("plain", 2, 3)
    groups = find_groups(net)
    dropout = TargetedDropout(groups)
    assert set(dropout.probabilities.values()) == {INITIAL_P}
    dropout.attach()
    x = tiny_input(2, 3)
    state_keys = set(net.state_dict())
    dropout.probabilities = {g.name: 0.5 for g in groups}
    net.eval()
    with torch.no_grad():
        a, b = net(x), net(x)
    assert torch.equal(a, b)  # no dropout in eval mode
    net.train()
    torch.manual_seed(0)
    with torch.no_grad():
        c = net(x)
    dropout.detach()
    with torch.no_grad():
        d = net(x)
    assert not torch.equal(c, d)
    assert set(net.state_dict()) == state_keys  # hooks change nothing in the state dict


def test_dropout_zeroes_whole_channels():
    net = tiny_net("plain", 2, 3).train()
    group = find_groups(net)[0]
    dropout = TargetedDropout([group])
    dropout.probabilities = {group.name: 0.5}
    dropout.attach()
    seen = []
    handle = group.activations[0].register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    torch.manual_seed(1)
    with torch.no_grad():
        net(tiny_input(2, 3))
    handle.remove()
    # the hook order: dropout first (registered first) -> our hook sees the masked output
    out = seen[0]
    per_channel_zero = (out == 0).flatten(2).all(-1)
    assert per_channel_zero.any() and not per_channel_zero.all()
