"""Pooling benchmark workspaces (``nnunet-pruning pool-dice``): runs pair only within their workspace and fold; the
pooled interval is the t interval over every pair, as the benchmark's own over folds."""

import importlib
import json

import pytest

from nnunet_pruning.app import pooling
from nnunet_pruning.app.run_statistics import paired_difference
from nnunet_pruning.app.cli import main


def _results(path, dice: dict[str, list[float]], setup: dict | None = None):
    runs = [{"trainer": t, "fold": str(f), "test_dice": d} for t, values in dice.items() for f, d in enumerate(values)]
    path.write_text(json.dumps({"runs": runs, **({"setup": setup} if setup else {})}))
    return str(path)


def test_pairs_within_a_workspace_and_pools_the_differences(tmp_path, capsys):
    a = _results(tmp_path / "a.json", {"stock": [0.80, 0.82], "stamp": [0.75, 0.79], "floor": [0.78, 0.78]})
    b = _results(tmp_path / "b.json", {"stock": [0.60, 0.90], "stamp": [0.58, 0.86], "floor": [0.59, 0.88]})
    out = tmp_path / "pooled.json"
    assert main(["pool-dice", a, b, "--trainers", "stock", "stamp", "floor", "--reference", "stamp",
                 "--json", str(out)]) == 0
    saved = json.loads(out.read_text())
    rows = {r["trainer"]: r for r in saved["rows"]}
    # the same fold number in two workspaces is two pairs, never one
    expected = paired_difference({"0/0": 0.75, "0/1": 0.79, "1/0": 0.58, "1/1": 0.86},
                                 {"0/0": 0.80, "0/1": 0.82, "1/0": 0.60, "1/1": 0.90})
    assert rows["stamp"]["vs_baseline"]["mean"] == pytest.approx(expected["mean"]) == pytest.approx(-0.035)
    assert rows["stamp"]["vs_baseline"]["ci95"] == pytest.approx(expected["ci95"])
    assert rows["stamp"]["vs_baseline"]["n"] == 4 and rows["stamp"]["vs_baseline"]["higher"] == 0
    assert rows["floor"]["vs_reference"]["mean"] == pytest.approx((0.03 - 0.01 + 0.01 + 0.02) / 4)
    assert rows["floor"]["vs_reference"]["higher"] == 3
    assert "vs_reference" not in rows["stamp"] and rows["stock"]["runs"] == 4
    assert saved["command"].startswith("nnunet-pruning pool-dice ") and saved["trainers"] == ["stock", "stamp", "floor"]
    printed = capsys.readouterr().out
    assert "| stamp | 4 |" in printed and "higher in 0 of 4" in printed and f"wrote {out}" in printed


def test_a_workspace_folder_and_its_benchmarked_trainers_by_default(tmp_path, capsys):
    """A user names the benchmark's output folders; the trainers default to what the first one benchmarked."""
    (tmp_path / "seed0").mkdir()
    _results(tmp_path / "seed0" / "results.json", {"stock": [0.8, 0.7], "stamp": [0.75, 0.71]},
             setup={"trainers": ["stock", "stamp"]})
    rows = pooling.pool_dice([str(tmp_path / "seed0")], say=lambda line: None)
    assert [r["trainer"] for r in rows] == ["stock", "stamp"]
    assert rows[1]["vs_baseline"]["mean"] == pytest.approx(-0.02)


def test_a_workspaces_other_runs_are_pooled_too(tmp_path):
    """results.json keeps the runs of earlier invocations in ``other_runs``: pooling pairs them as well."""
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"runs": [{"trainer": "stock", "fold": "0", "test_dice": 0.8},
                                         {"trainer": "stock", "fold": "1", "test_dice": 0.7}],
                                "other_runs": [{"trainer": "stamp", "fold": "0", "test_dice": 0.75},
                                               {"trainer": "stamp", "fold": "1", "test_dice": 0.71}]}))
    runs = pooling.pooled_runs([pooling.read_results(str(path))], ["stock", "stamp"])
    assert runs == {"stock": {"0/0": 0.8, "0/1": 0.7}, "stamp": {"0/0": 0.75, "0/1": 0.71}}


@pytest.mark.parametrize("case, argv, message", [
    ("missing", ["--trainers", "stock", "stamp"], "no run of stamp in any of the results given"),
    ("missing", ["--trainers", "stock", "stock"], "a trainer is listed twice (stock stock); list each once"),
    ("missing", ["--trainers", "stock", "x", "--reference", "stamp"], "--reference stamp is not one of the trainers"),
    ("missing", ["--trainers", "stock"], "--trainers needs at least two trainers"),
    ("missing", [], "name the trainers to pool (--trainers BASELINE T2 ...)"),
    ("empty folder", [], "no benchmark results.json there (run nnunet-pruning benchmark -o"),
    ("not json", [], "not a readable results.json"),
    ("no runs", [], "no list of runs in it; is it a benchmark's results.json?"),
])
def test_every_misuse_is_one_line(tmp_path, capsys, case, argv, message):
    path = {"missing": lambda: _results(tmp_path / "a.json", {"stock": [0.8, 0.8]}),
            "empty folder": lambda: str(tmp_path),
            "not json": lambda: str((tmp_path / "x.json").write_text("{") and tmp_path / "x.json"),
            "no runs": lambda: str((tmp_path / "y.json").write_text("[]") and tmp_path / "y.json")}[case]()
    assert main(["pool-dice", path, *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("nnunet-pruning: error: ") and message in err, err


def test_plot_shows_every_pooled_run(tmp_path, monkeypatch):
    from nnunet_pruning.app import benchmark_report

    drawn = {}
    monkeypatch.setattr(pooling, "plot_dice_runs", lambda rows, runs, path, title: drawn.update(
        rows=rows, runs=runs, path=path, title=title))
    a = _results(tmp_path / "a.json", {"stock": [0.80, 0.82], "stamp": [0.75, 0.79]})
    b = _results(tmp_path / "b.json", {"stock": [0.60], "stamp": [0.58]})
    assert main(["pool-dice", a, b, "--trainers", "stock", "stamp", "--plot", str(tmp_path / "p.png")]) == 0
    assert sorted(r["test_dice"] for r in drawn["runs"] if r["trainer"] == "stamp") == [0.58, 0.75, 0.79]
    assert [r["trainer"] for r in drawn["rows"]] == ["stock", "stamp"]
    assert drawn["rows"][1]["dice_mean"] == pytest.approx((0.75 + 0.79 + 0.58) / 3)
    assert "over 2 workspaces" in drawn["title"]
    # and the real plot is a PNG
    benchmark_report.plot_dice_runs(drawn["rows"], drawn["runs"], str(tmp_path / "real.png"), drawn["title"])
    assert (tmp_path / "real.png").read_bytes()[:4] == b"\x89PNG"


def test_the_script_docs_quote_runs_the_command(tmp_path, capsys):
    """``python scripts/pool_dice.py ...`` (results.md's commands) is ``nnunet-pruning pool-dice ...``."""
    a = _results(tmp_path / "a.json", {"stock": [0.80, 0.82], "stamp": [0.75, 0.79]})
    script = importlib.import_module("scripts.pool_dice")
    assert script.main([a, "--trainers", "stock", "stamp"]) == 0
    assert "| stamp | 2 | 0.770 +- 0.028 | -0.040 (" in capsys.readouterr().out


def test_per_class_pools_each_class_pairwise(tmp_path, capsys):
    """--per-class: each class's Dice paired like the overall one (same workspace, same fold), named as the first
    workspace's labels."""
    def results(path, dice):  # {trainer: [(class 1, class 2) per fold]}
        runs = [{"trainer": t, "fold": str(f), "test_dice": sum(d) / 2, "test_dice_per_class": {"1": d[0], "2": d[1]}}
                for t, values in dice.items() for f, d in enumerate(values)]
        path.write_text(json.dumps({"runs": runs, "setup": {"trainers": list(dice), "labels": {"1": "blob",
                                                                                                  "2": "shell"}}}))
        return str(path)

    a = results(tmp_path / "a.json", {"stock": [(0.8, 0.6), (0.9, 0.7)], "stamp": [(0.7, 0.6), (0.8, 0.8)]})
    b = results(tmp_path / "b.json", {"stock": [(0.5, 0.5)], "stamp": [(0.6, 0.4)]})
    out = tmp_path / "pooled.json"
    assert main(["pool-dice", a, b, "--per-class", "--json", str(out)]) == 0
    by_class = json.loads(out.read_text())["per_class_vs_baseline"]
    assert by_class["1"]["stamp"]["mean"] == pytest.approx((-0.1 - 0.1 + 0.1) / 3)
    assert by_class["2"]["stamp"]["mean"] == pytest.approx((0.0 + 0.1 - 0.1) / 3)
    assert by_class["1"]["stamp"]["higher"] == 1 and by_class["1"]["stamp"]["n"] == 3
    printed = capsys.readouterr().out
    assert "| trainer | blob (1) | shell (2) |" in printed and "| stamp | -0.033 (" in printed
    plain = tmp_path / "plain.json"
    assert main(["pool-dice", a, "--json", str(plain)]) == 0 and "per_class_vs_baseline" not in plain.read_text()
    old = _results(tmp_path / "old.json", {"stock": [0.8, 0.7], "stamp": [0.7, 0.7]}, setup={"trainers": ["stock", "stamp"]})
    assert main(["pool-dice", old, "--per-class"]) == 2
    assert "--per-class: the results hold no per-class Dice" in capsys.readouterr().err
