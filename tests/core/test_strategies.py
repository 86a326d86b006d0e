"""Pruning methods as strategy objects: one class per method, looked up by name, used by the Pruner."""

import random

import pytest
import torch

from nnunet_pruning.core import strategies
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.groups import find_groups
from nnunet_pruning.core.pruner import Pruner, select_channels
from nnunet_pruning.core.schedule import METHODS, PruningSchedule
from nnunet_pruning.core.strategies import STRATEGIES, PruningStrategy, Selection, get_strategy
from tests.tiny import tiny_net


class _Group:
    def __init__(self, name, width):
        self.name, self.width = name, width


GROUPS = [_Group("a", 4), _Group("b", 8)]
COSTS = {"a": 1.0, "b": 1.0}


def test_registry_names_every_method_once():
    assert METHODS == tuple(STRATEGIES) == ("taylor", "taylor_flops", "random_largest", "taylor_layer_random")
    for name, strategy in STRATEGIES.items():
        assert isinstance(strategy, PruningStrategy) and strategy.name == name


def test_unknown_method_is_one_line():
    with pytest.raises(PruningError, match="unknown pruning method 'nope'; use one of taylor") as e:
        get_strategy("nope")
    assert "\n" not in str(e.value)
    with pytest.raises(PruningError, match="unknown pruning method"):
        PruningSchedule(method="nope").validate()


def test_taylor_takes_the_lowest_scores_across_groups():
    scores = {"a": torch.tensor([0.9, 0.1, 0.8, 0.7]), "b": torch.tensor([0.5, 0.05, 0.6, 0.4, 0.3, 0.95, 0.2, 1.0])}
    chosen = select_channels(GROUPS, "taylor", 3, COSTS, 1, random.Random(0), scores)
    assert chosen == {"a": [1], "b": [1, 6]}


def test_flops_weights_make_expensive_channels_go_first():
    scores = {"a": torch.tensor([0.2, 0.2, 0.2, 0.2]), "b": torch.tensor([0.1] * 8)}
    weights = {"a": 1.0, "b": 0.1}  # b's channels are cheap: their weighted importance is 1.0 > 0.2
    assert select_channels(GROUPS, "taylor_flops", 2, COSTS, 1, random.Random(0), scores, weights) == {"a": [0, 1]}
    # the pruner passes weights to plain STAMP only for the latency target; without them the ranking is pure
    assert select_channels(GROUPS, "taylor", 2, COSTS, 1, random.Random(0), scores) == {"b": [0, 1]}


def test_a_group_that_saves_nothing_keeps_its_channels():
    scores = {"a": torch.tensor([0.2, 0.2, 0.2, 0.2]), "b": torch.tensor([0.1] * 8)}
    costs = {"a": 1.0, "b": 0.0}  # measured: narrowing b is not faster
    weights = {"a": 1.0, "b": 0.0}
    assert select_channels(GROUPS, "taylor", 2, costs, 1, random.Random(0), scores, weights) == {"a": [0, 1]}
    assert set(select_channels(GROUPS, "random_largest", 2, costs, 1, random.Random(0))) == {"a"}  # b is wider


def test_layer_random_keeps_the_group_and_randomises_the_channel():
    scores = {"a": torch.tensor([0.9, 0.9, 0.9, 0.9]), "b": torch.tensor([0.0] + [0.5] * 7)}
    picks = {tuple(select_channels(GROUPS, "taylor_layer_random", 1, COSTS, 1, random.Random(seed), scores)["b"])
             for seed in range(20)}
    assert len(picks) > 1  # the group is Taylor's (b), the channel varies with the seed


def test_random_largest_only_cuts_the_widest_group_and_respects_min_width():
    chosen = select_channels(GROUPS, "random_largest", 4, COSTS, 1, random.Random(0))
    assert set(chosen) == {"b"} and len(chosen["b"]) == 4
    everything = select_channels(GROUPS, "random_largest", 100, COSTS, 2, random.Random(0))
    assert len(everything["a"]) == 2 and len(everything["b"]) == 6  # both stop at min_width 2


@pytest.mark.parametrize("method", ["taylor", "taylor_layer_random", "random_largest"])
def test_whole_cuts_take_a_group_down_to_its_floor_or_leave_it(method):
    """The latency target's rounds: each group chosen loses every channel down to its floor (time falls in steps,
    a cut between two saves nothing); STAMP's group is the one of its lowest-ranked channel, and its next-lowest
    channels complete the cut."""
    scores = {"a": torch.tensor([0.9, 0.1, 0.8, 0.7]), "b": torch.tensor([0.5, 0.05, 0.6, 0.4, 0.3, 0.95, 0.2, 1.0])}
    floors = {"a": 2, "b": 4}
    one = select_channels(GROUPS, method, 1, COSTS, floors, random.Random(0), scores, whole=True)
    assert {name: len(channels) for name, channels in one.items()} == {"b": 4}  # a need of 1: b's whole cut
    if method == "taylor":
        assert one["b"] == [1, 3, 4, 6]  # its four lowest scores
    both = select_channels(GROUPS, method, 5, COSTS, floors, random.Random(0), scores, whole=True)
    assert {name: len(channels) for name, channels in both.items()} == {"a": 2, "b": 4}
    assert select_channels(GROUPS, method, 1, COSTS, {"a": 4, "b": 8}, random.Random(0), scores, whole=True) == {}


def test_score_methods_without_scores_are_one_line():
    with pytest.raises(PruningError, match="needs Taylor scores"):
        select_channels(GROUPS, "taylor", 1, COSTS, 1, random.Random(0), None)


def test_a_new_method_is_one_class(monkeypatch):
    class FirstChannels(PruningStrategy):
        """Always the first free channel of the first group with room."""
        name = "first_channels"
        uses_scores = False

        def select(self, selection: Selection, need, rng, normalised, weights):
            for group in selection.groups:
                while selection.saved < need and selection.room(group.name):
                    selection.take(group.name, selection.free_channels(group.name)[0])

    monkeypatch.setitem(STRATEGIES, "first_channels", FirstChannels())
    net = tiny_net("plain", 2, 3, dtype=torch.float32)
    schedule = PruningSchedule(method="first_channels", keep_fraction=0.8, warmup_epochs=0, every_epochs=1,
                               step_fraction=0.2)
    pruner = Pruner(net, schedule, (2, 16, 16))
    assert pruner.scorer is None and pruner.dropout is None
    before = {g.name: g.width for g in find_groups(net)}
    record = pruner.step(0)
    assert record["channels_removed"] > 0 and record["target_reached"]
    after = {g.name: g.width for g in find_groups(net)}
    assert after != before and strategies.get_strategy("first_channels") is STRATEGIES["first_channels"]
