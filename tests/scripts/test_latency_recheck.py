"""The latency recheck reads each fold's logged share and times the network again (no timing is asserted)."""

import json

import pytest

from scripts import latency_recheck
from tests.app.tiny_model import write_model_folder


def test_recheck_reports_the_logged_and_the_measured_share(tmp_path, capsys):
    folder = write_model_folder(tmp_path, folds=("0",))
    log = {"schedule": {"target_metric": "latency", "keep_fraction": 0.5}, "latency": {"device": "cpu, 1 threads"},
           "target_reached": True, "outcome": "reached",
           "steps": [{"latency": 0.01, "latency_fraction": 0.45, "params_fraction": 0.6}]}
    (tmp_path / folder / "fold_0" / "pruning_log.json").write_text(json.dumps(log))
    out = tmp_path / "recheck.json"
    assert latency_recheck.main([folder, "--threads", "1", "--rounds", "2", "--channels-last", "--json", str(out)]) == 0
    fold = json.loads(out.read_text())["models"][folder.rsplit("/", 1)[-1]]["0"]
    assert fold["logged_fraction"] == 0.45 and fold["keep_fraction"] == 0.5
    assert len(fold["now"]) == len(fold["channels_last"]) == 2 and fold["now_median"] > 0
    assert "45.0%" in capsys.readouterr().out


def test_bad_rounds_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        latency_recheck.main([str(tmp_path), "--rounds", "0"])
    assert "--rounds and --threads must be >= 1" in capsys.readouterr().err
