"""Pooling benchmark workspaces: runs pair only within their workspace and fold; the pooled interval is the t
interval over every pair, as the benchmark's own over folds."""

import importlib
import json

import pytest

from nnunet_pruning.app.benchmark import paired_difference


def _load():
    return importlib.import_module("scripts.pool_dice")


def _results(path, dice: dict[str, list[float]]):
    runs = [{"trainer": t, "fold": str(f), "test_dice": d} for t, values in dice.items() for f, d in enumerate(values)]
    path.write_text(json.dumps({"runs": runs}))
    return str(path)


def test_pairs_within_a_workspace_and_pools_the_differences(tmp_path, capsys):
    a = _results(tmp_path / "a.json", {"stock": [0.80, 0.82], "stamp": [0.75, 0.79], "floor": [0.78, 0.78]})
    b = _results(tmp_path / "b.json", {"stock": [0.60, 0.90], "stamp": [0.58, 0.86], "floor": [0.59, 0.88]})
    out = tmp_path / "pooled.json"
    assert _load().main([a, b, "--trainers", "stock", "stamp", "floor", "--reference", "stamp",
                         "--json", str(out)]) == 0
    rows = {r["trainer"]: r for r in json.loads(out.read_text())["rows"]}
    # the same fold number in two workspaces is two pairs, never one
    expected = paired_difference({"0/0": 0.75, "0/1": 0.79, "1/0": 0.58, "1/1": 0.86},
                                 {"0/0": 0.80, "0/1": 0.82, "1/0": 0.60, "1/1": 0.90})
    assert rows["stamp"]["vs_baseline"]["mean"] == pytest.approx(expected["mean"]) == pytest.approx(-0.035)
    assert rows["stamp"]["vs_baseline"]["ci95"] == pytest.approx(expected["ci95"])
    assert rows["stamp"]["vs_baseline"]["n"] == 4 and rows["stamp"]["vs_baseline"]["higher"] == 0
    assert rows["floor"]["vs_reference"]["mean"] == pytest.approx((0.03 - 0.01 + 0.01 + 0.02) / 4)
    assert rows["floor"]["vs_reference"]["higher"] == 3
    assert "vs_reference" not in rows["stamp"] and rows["stock"]["runs"] == 4
    printed = capsys.readouterr().out
    assert "| stamp | 4 |" in printed and "higher in 0 of 4" in printed


def test_a_trainer_in_no_workspace_is_one_line(tmp_path, capsys):
    a = _results(tmp_path / "a.json", {"stock": [0.8, 0.8]})
    assert _load().main([a, "--trainers", "stock", "stamp"]) == 2
    assert capsys.readouterr().err.strip() == "pool_dice: error: no run of stamp in any of the results given"
    with pytest.raises(SystemExit):
        _load().main([a, "--trainers", "stock", "--reference", "stamp"])


def test_plot_shows_every_pooled_run(tmp_path, monkeypatch):
    from nnunet_pruning.app import benchmark

    drawn = {}
    monkeypatch.setattr(_load(), "plot_dice_runs", lambda rows, runs, path, title: drawn.update(
        rows=rows, runs=runs, path=path, title=title))
    a = _results(tmp_path / "a.json", {"stock": [0.80, 0.82], "stamp": [0.75, 0.79]})
    b = _results(tmp_path / "b.json", {"stock": [0.60], "stamp": [0.58]})
    assert _load().main([a, b, "--trainers", "stock", "stamp", "--plot", str(tmp_path / "p.png")]) == 0
    assert sorted(r["test_dice"] for r in drawn["runs"] if r["trainer"] == "stamp") == [0.58, 0.75, 0.79]
    assert [r["trainer"] for r in drawn["rows"]] == ["stock", "stamp"]
    assert drawn["rows"][1]["dice_mean"] == pytest.approx((0.75 + 0.79 + 0.58) / 3)
    assert "over 2 workspaces" in drawn["title"]
    # and the real plot is a PNG
    benchmark.plot_dice_runs(drawn["rows"], drawn["runs"], str(tmp_path / "real.png"), drawn["title"])
    assert (tmp_path / "real.png").read_bytes()[:4] == b"\x89PNG"


def test_a_workspaces_other_runs_are_pooled_too(tmp_path):
    """results.json keeps the runs of earlier invocations in ``other_runs``: pooling pairs them as well."""
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"runs": [{"trainer": "stock", "fold": "0", "test_dice": 0.8},
                                         {"trainer": "stock", "fold": "1", "test_dice": 0.7}],
                                "other_runs": [{"trainer": "stamp", "fold": "0", "test_dice": 0.75},
                                               {"trainer": "stamp", "fold": "1", "test_dice": 0.71}]}))
    runs = _load().pooled_runs([json.loads(path.read_text())], ["stock", "stamp"])
    assert runs == {"stock": {"0/0": 0.8, "0/1": 0.7}, "stamp": {"0/0": 0.75, "0/1": 0.71}}
