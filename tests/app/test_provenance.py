import json

import torch

from nnunet_pruning.app.provenance import provenance, write_result


def test_provenance_names_the_command_that_reruns_the_script_and_the_machine():
    found = provenance("/somewhere/scripts/benchmark_conv_channels.py", ["--shapes", "8x8x8", "--json", "a b.json"])
    assert found["command"] == "python scripts/benchmark_conv_channels.py --shapes 8x8x8 --json 'a b.json'"
    assert found["torch"] == torch.__version__
    assert set(found) >= {"date", "platform", "processor", "cpu_count"}


def test_write_result_stamps_the_provenance_first_and_keeps_the_scripts_own_keys(tmp_path):
    path, said = str(tmp_path / "result.json"), []
    written = write_result({"median_ms": {"8": 1.5}, "date": "2026-01-01"}, path, "scripts/x.py", ["--json", path],
                           say=said.append)
    with open(path) as f:
        on_disk = json.load(f)
    assert on_disk == written
    assert list(on_disk)[0] == "command" and on_disk["command"] == f"python scripts/x.py --json {path}"
    assert on_disk["median_ms"] == {"8": 1.5} and on_disk["date"] == "2026-01-01"
    assert said == [f"wrote {path}"]


def test_without_a_path_nothing_is_written_or_said(tmp_path):
    said = []
    assert write_result({"a": 1}, None, "scripts/x.py", [], say=said.append) is None
    assert said == [] and list(tmp_path.iterdir()) == []
