"""Paired differences and per-trainer summaries of test Dice over runs, on hand-made runs."""

import pytest

from nnunet_pruning.app.run_statistics import paired_difference, summarise_runs
from nnunet_pruning.core.errors import PruningError

from .hand_made_runs import hand_made_runs


def test_paired_difference_and_its_interval():
    diff = paired_difference({"0": 0.79, "1": 0.80, "2": 0.76}, {"0": 0.80, "1": 0.82, "2": 0.78})
    assert diff["mean"] == pytest.approx(-0.016667, abs=1e-6) and diff["n"] == 3
    assert diff["sd"] == pytest.approx(0.005774, abs=1e-6)
    half = 4.302653 * 0.005774 / 3 ** 0.5  # t(0.975, 2 df)
    assert diff["ci95"] == pytest.approx([diff["mean"] - half, diff["mean"] + half], abs=1e-5)
    one = paired_difference({"0": 0.7}, {"0": 0.8, "1": 0.9})
    assert one["ci95"] is None and one["mean"] == pytest.approx(-0.1)
    with pytest.raises(PruningError, match="no fold in common"):
        paired_difference({"3": 0.7}, {"0": 0.8})


def test_summary_rows():
    rows = summarise_runs(hand_made_runs(), ["stock", "stamp"])
    assert [r["trainer"] for r in rows] == ["stock", "stamp"]
    assert rows[0]["dice_mean"] == pytest.approx(0.80) and rows[0]["dice_sd"] == pytest.approx(0.02)
    assert rows[0]["paired_difference"] is None and rows[1]["paired_difference"]["n"] == 3
    assert rows[1]["targets_missed"] == {"2": ""} and rows[1]["train_seconds"] == 180
