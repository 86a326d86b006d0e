"""The clock: one timed call, interleaved rounds, the CPU's name."""

from types import SimpleNamespace

from nnunet_pruning.core import clock
from nnunet_pruning.core.clock import interleaved_seconds, seconds_once


def test_interleaved_runs_warm_up_then_alternate_and_time_each_run(monkeypatch):
    """The one timing loop of the package and its scripts: warm-up first, then round by round, every run timed."""
    calls, now = [], {"t": 0.0}

    def run(name, seconds):
        def call():
            calls.append(name)
            now["t"] += seconds
        return call

    monkeypatch.setattr(clock, "time", SimpleNamespace(perf_counter=lambda: now["t"]))  # this module's clock only
    seen = []
    times = interleaved_seconds({"a": run("a", 0.5), "b": run("b", 2.0)}, warmup=2, repeats=3,
                                on_run=lambda r, name, s: seen.append((r, name, s)))
    assert seconds_once(run("c", 0.25)) == 0.25
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 3 + ["c"]
    assert times == {"a": [0.5] * 3, "b": [2.0] * 3}
    assert seen == [(r, n, s) for r in range(3) for n, s in (("a", 0.5), ("b", 2.0))]


def test_cpu_model_reads_proc_cpuinfo_and_falls_back_to_platform(monkeypatch, tmp_path):
    import builtins

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9999 96-Core\n")
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda path, *a, **k: real_open(info if path == "/proc/cpuinfo" else path,
                                                                        *a, **k))
    assert clock.cpu_model() == "AMD EPYC 9999 96-Core"
    info.write_text("processor\t: 0\n")
    monkeypatch.setattr(clock.platform, "processor", lambda: "")
    assert clock.cpu_model() == clock.platform.machine()
