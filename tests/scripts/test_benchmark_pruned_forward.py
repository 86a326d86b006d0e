"""The forward benchmark runs and reports consistent numbers (no timing is asserted: speed claims come
from running the script, not from unit tests)."""

import importlib
import json

import pytest

def _load():
    return importlib.import_module("scripts.benchmark_pruned_forward")


@pytest.mark.parametrize("architecture", ["plain", "resenc"])
def test_benchmark_writes_json(tmp_path, architecture, capsys):
    out = tmp_path / "bench.json"
    assert _load().main(["--architecture", architecture, "--stages", "3", "--patch", "16", "16", "--warmup", "0",
                         "--repeats", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["params"]["pruned"] < result["params"]["stock"]
    assert result["flops_ratio"] == pytest.approx(result["gflops"]["stock"] / result["gflops"]["pruned"])
    cpu = result["timings"]["cpu"]
    assert cpu["speedup"] == pytest.approx(cpu["median_seconds"]["stock"] / cpu["median_seconds"]["pruned"])
    assert "measured speedup" in capsys.readouterr().out


def test_bad_fraction(capsys):
    with pytest.raises(SystemExit):
        _load().main(["--fraction", "1.5"])
    assert "--fraction must be in (0, 1)" in capsys.readouterr().err


def test_python_m_scripts_lists_and_runs_the_benchmarks(tmp_path, capsys):
    from scripts.__main__ import BENCHMARKS, main

    assert main([]) == 0
    listing = capsys.readouterr().out
    assert all(f"  {name}" in listing for name in BENCHMARKS)
    assert main(["nope"]) == 2 and "no benchmark 'nope'" in capsys.readouterr().err
    out = tmp_path / "b.json"
    assert main(["pruned-forward", "--stages", "3", "--patch", "16", "16", "--warmup", "0", "--repeats", "1",
                 "--json", str(out)]) == 0 and json.loads(out.read_text())["params"]
