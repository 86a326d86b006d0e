"""The forward benchmark runs and reports consistent numbers (no timing is asserted: speed claims come
from running the script, not from unit tests)."""

import importlib.util
import json
import os

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "benchmark_pruned_forward.py")


def _load():
    spec = importlib.util.spec_from_file_location("benchmark_pruned_forward", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
