"""The inference and training benchmarks run on tiny fake plans and report consistent numbers (no timing
is asserted: speed claims come from running the scripts, see docs/results.md)."""

import importlib
import json

import pytest

from tests.trainers.fake_task import make_plans, write_plans_file

def _load(name):
    return importlib.import_module(f"scripts.{name}")


@pytest.fixture
def plans_file(tmp_path, monkeypatch):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, "")
    return write_plans_file(tmp_path, make_plans("plain", dim=3, n_stages=3))


def test_inference_benchmark(plans_file, tmp_path, capsys):
    out = tmp_path / "inference.json"
    assert _load("benchmark_inference").main(["--plans", plans_file, "--shape", "12", "12", "12", "--volumes", "1",
                                              "--warmup", "1", "--warmup-volume", "patch", "--repeats", "1",
                                              "--device", "cpu", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    stats, timed = result["networks"], result["devices"]["cpu"]
    assert list(stats) == ["stock nnU-Net", "Flat U-Net", "stock nnU-Net, oneDNN convolutions",
                           "random-largest (keep 20% params)"]
    assert stats["stock nnU-Net, oneDNN convolutions"] == stats["stock nnU-Net"]  # the same network
    assert stats["random-largest (keep 20% params)"]["params"] <= 0.2 * stats["stock nnU-Net"]["params"]
    for name, t in timed.items():
        assert t["flops_ratio_vs_stock"] == pytest.approx(stats["stock nnU-Net"]["gflops_patch"] /
                                                          stats[name]["gflops_patch"])
        assert t["speedup_vs_stock"] == pytest.approx(timed["stock nnU-Net"]["median_s"] / t["median_s"])
        assert t["tiles"] == 8  # 12^3 volume, 8^3 patch, step 0.5: 2 x 2 x 2 tiles
    # what ran each network: this package's as nnUNetv2_predict runs them (the tests pin nnUNet_pruning_backend)
    assert {t["backend"] for t in timed.values()} == {"torch"}
    assert isinstance(result["other_cpu_cores"]["cpu"], float)  # measured (Linux: /proc/stat), not skipped
    assert all(isinstance(t["other_cpu_cores_forward"], float) for t in timed.values())  # and the forward part's
    printed = capsys.readouterr().out
    assert "FLOPs ratio" in printed and "ran on (cpu): stock nnU-Net: torch; Flat U-Net: torch;" in printed


def test_inference_benchmark_on_a_runtime_backend(plans_file, tmp_path, monkeypatch):
    """``--backends``: each network also runs eager on the runtime (`NAME [onnxruntime]`), the network really on
    that runtime, its speedup against stock on the same runtime and against stock on PyTorch."""
    from nnunet_pruning.core import runtimes

    made = []
    make_runner = runtimes.make_runner
    monkeypatch.setattr(runtimes, "make_runner", lambda backend, *a, **k: made.append(backend) or make_runner(
        backend, *a, **k))
    out = tmp_path / "inference.json"
    assert _load("benchmark_inference").main(["--plans", plans_file, "--shape", "8", "8", "8", "--volumes", "1",
                                              "--warmup", "1", "--repeats", "1", "--device", "cpu", "--minimal",
                                              "--backends", "torch", "onnxruntime", "--json", str(out)]) == 0
    timed = json.loads(out.read_text())["devices"]["cpu"]
    runtime_entries = [name for name in timed if name.endswith(" [onnxruntime]")]
    assert runtime_entries and all(name.removesuffix(" [onnxruntime]") in timed for name in runtime_entries)
    assert made and set(made) == {"onnxruntime"}
    stock = timed["stock nnU-Net [onnxruntime]"]
    assert {timed[name]["backend"] for name in runtime_entries} == {"onnxruntime"}
    for name in runtime_entries:
        t = timed[name]
        assert t["speedup_vs_stock"] == pytest.approx(stock["median_s"] / t["median_s"])
        assert t["speedup_vs_eager_stock"] == pytest.approx(timed["stock nnU-Net"]["median_s"] / t["median_s"])
    with pytest.raises(SystemExit):
        _load("benchmark_inference").main(["--plans", plans_file, "--backends", "tensorrt"])


def test_inference_benchmark_latency_target_and_plans_override(plans_file, tmp_path, capsys):
    out = tmp_path / "inference.json"
    assert _load("benchmark_inference").main(["--plans", plans_file, "--shape", "12", "12", "20", "--volumes", "1",
                                              "--warmup", "0", "--repeats", "1", "--device", "cpu", "--threads", "1",
                                              "--patch", "8", "8", "16", "--stages", "2", "--latency-keep", "0.6",
                                              "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["patch_size"] == [8, 8, 16] and result["architecture"]["n_stages"] == 2
    assert result["command"].startswith("python scripts/benchmark_inference.py --plans")
    name = "random-largest (keep 60% latency)"
    target = result["latency_targets"][name]
    assert target["keep_fraction"] == 0.6 and target["device"] == "cpu, 1 threads" and target["unpruned_seconds"] > 0
    timed = result["devices"]["cpu"][name]
    assert timed["latency_vs_target"] == pytest.approx(timed["latency_fraction_now"] / 0.6)
    reference = result["devices"]["cpu"]["stock nnU-Net, oneDNN convolutions"]  # what the pruner timed against
    assert timed["latency_reference"] == "stock nnU-Net, oneDNN convolutions"
    assert timed["latency_fraction_now"] == pytest.approx(timed["forward_per_tile_median_s"] /
                                                          reference["forward_per_tile_median_s"])
    assert "the target" in capsys.readouterr().out


def test_training_benchmark(plans_file, tmp_path, capsys):
    out = tmp_path / "training.json"
    assert _load("benchmark_training").main(["--plans", plans_file, "--trainers", "nnUNetTrainerStock_smoke",
                                             "nnUNetTrainerRandomLargest_smoke", "nnUNetTrainerSTAMP_smoke",
                                             "--epochs", "3", "--iterations", "2", "--chunk", "1", "--json", str(out)]) == 0
    runs = json.loads(out.read_text())["runs"]
    stock, random_largest, stamp = runs
    assert len(stock["per_epoch"]) == 3 and stock["per_epoch"][0]["params"] == stock["per_epoch"][-1]["params"]
    for run in (random_largest, stamp):  # the smoke schedule prunes after epochs 0 and 1, down to 50%
        params = [e["params"] for e in run["per_epoch"]]
        assert params[0] == stock["per_epoch"][0]["params"] and params[-1] <= 0.5 * params[0] + 1
        assert run["per_epoch"][0]["pruning_step_s"] > 0 and run["per_epoch"][2]["pruning_step_s"] == 0
        assert run["total_vs_reference"] == pytest.approx(run["total_s"] / stock["total_s"])
    assert all("other_cpu_cores" in e for run in runs for e in run["per_epoch"])
    # interleaved by chunks of --chunk iterations: 2 iterations, chunk 1 -> two paired ratios per epoch
    assert all(len(e["chunk_ratios"]) == 2 for run in runs for e in run["per_epoch"])
    assert all(r == 1.0 for e in stock["per_epoch"] for r in e["chunk_ratios"])
    assert "s/it first epoch (paired range)" in capsys.readouterr().out


def test_conv_channel_benchmark(tmp_path, capsys):
    out = tmp_path / "conv.json"
    assert _load("benchmark_conv_channels").main(["--channels", "4", "8", "--shapes", "8x8x8", "--warmup", "0",
                                                  "--repeats", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["median_ms"]["8x8x8"]) == {"4", "8"} and all(v > 0 for v in result["median_ms"]["8x8x8"].values())
    assert "FLOPs ratio 0.25" in capsys.readouterr().out


def test_call_overhead_benchmark(tmp_path, capsys):
    """The wrappers' cost per call, beside the walk both made on every call before: the graphed call and the
    runtime key are cheaper than one walk."""
    out = tmp_path / "overhead.json"
    assert _load("benchmark_call_overhead").main(["--calls", "3", "--repeats", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["networks"]) == {"plain", "resenc"}
    for row in result["networks"].values():
        assert row["tensors"] > 100 and row["graphed_call_us"] < row["walk_addresses_us"]
        assert row["runtime_key_us"] < row["walk_list_and_signature_us"]
    assert "microseconds per call" in capsys.readouterr().out


def test_gpu_benchmark_runs_on_the_cpu_and_keeps_its_time_budget(plans_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("nnUNet_compile", "f")  # the script sets it; restored after the test
    out = tmp_path / "gpu.json"
    assert _load("benchmark_gpu").main(["--plans", plans_file, "--device", "cpu", "--patch", "8", "8", "8",
                                        "--stages", "3", "--max-width", "32", "--shape", "12", "12", "12",
                                        "--latency-keep", "0", "--warmup", "0", "--repeats", "1", "--steps", "1",
                                        "--parts", "training", "profile", "recompile", "--compile-allowance-s", "1e6",
                                        "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["command"].startswith("python scripts/benchmark_gpu.py --plans")
    assert result["patch"] == [8, 8, 8] and result["stages"] == 3
    training = result["training"]
    # eager only: every compile would outrun the budget, and is skipped, not half-measured
    assert "stock nnU-Net" in training and not any(k.endswith("[compiled]") for k in training)
    assert training["stock nnU-Net + STAMP scoring hooks"]["median_step_s"] > 0
    assert set(result["profile"]) == {"stock nnU-Net", "random-largest (keep 20% params)"}
    assert all(abs(sum(p["share_by_kind"].values()) - 1) < 1e-6 for p in result["profile"].values())
    assert result["recompile"].startswith("skipped")  # its compiles would not fit the budget
    assert "training step" in capsys.readouterr().out


def test_inference_benchmark_compiled(plans_file, tmp_path, monkeypatch):
    # the script's compiled path: every network compiled, its first (compiling) run reported. With dynamo's
    # eager backend: the oneDNN network under inductor, after stock's (tracing into mkldnn_convolution, which
    # has no fake-tensor kernel, on a recompile) is tests/core/test_onednn.py's, with the real compiler
    import functools

    import torch

    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    out = tmp_path / "compiled.json"
    assert _load("benchmark_inference").main(["--plans", plans_file, "--shape", "8", "8", "8", "--volumes", "1",
                                              "--warmup", "1", "--repeats", "1", "--device", "cpu", "--compile",
                                              "compiled", "--only", "stock nnU-Net, oneDNN convolutions", "--json",
                                              str(out)]) == 0
    timed = json.loads(out.read_text())["devices"]["cpu"]
    assert list(timed) == ["stock nnU-Net [compiled]", "stock nnU-Net, oneDNN convolutions [compiled]"]
    assert all(t["first_run_with_compile_s"] > 0 for t in timed.values())


def test_inference_benchmark_only(plans_file, tmp_path, capsys):
    bench = _load("benchmark_inference")
    out = tmp_path / "only.json"
    assert bench.main(["--plans", plans_file, "--shape", "8", "8", "8", "--volumes", "1", "--warmup", "0",
                       "--repeats", "1", "--device", "cpu", "--only", "Flat U-Net", "--json", str(out)]) == 0
    assert list(json.loads(out.read_text())["devices"]["cpu"]) == ["stock nnU-Net", "Flat U-Net"]
    assert bench.main(["--plans", plans_file, "--device", "cpu", "--only", "Flat"]) == 2
    assert "--only 'Flat' is none of the networks" in capsys.readouterr().err


def test_scoring_benchmark(plans_file, tmp_path, capsys):
    """Every variant is timed, interleaved, on the same trainer, with its own hooks: none, parameter-gradient
    hooks, activation hooks."""
    scoring = _load("benchmark_scoring")
    attached = []
    real_attach = scoring._attach
    out = tmp_path / "scoring.json"
    scoring._attach = lambda pruner, variant: (real_attach(pruner, variant), attached.append(
        (variant, len(pruner.scorer._handles), pruner.scorer.from_parameters)))
    try:
        assert scoring.main(["--plans", plans_file, "--trainer", "nnUNetTrainerSTAMP_smoke", "--rounds", "2",
                             "--iterations", "1", "--threads", "1", "--json", str(out)]) == 0
    finally:
        scoring._attach = real_attach
    result = json.loads(out.read_text())
    assert list(result["median_s_per_iteration"]) == list(scoring.VARIANTS)
    assert all(len(s) == 2 for s in result["seconds"].values()) and result["vs_no_scoring"]["no scoring"] == 1
    ratios = result["round_ratios_vs_no_scoring"]
    assert ratios["no scoring"] == [1, 1] and all(len(r) == 2 for r in ratios.values())
    assert ratios["STAMP, activation hooks"][1] == result["seconds"]["STAMP, activation hooks"][1] / \
        result["seconds"]["no scoring"][1]
    assert [v for v, _, _ in attached] == 2 * list(scoring.VARIANTS)
    handles = {v: (n, p) for v, n, p in attached}
    assert handles["no scoring"][0] == 0 and handles["STAMP, parameter gradients"][1] is True
    assert handles["STAMP, activation hooks"][1] is False and handles["STAMP, activation hooks"][0] > 0
    assert "x no scoring" in capsys.readouterr().out
    assert scoring.main(["--plans", plans_file, "--trainer", "nnUNetTrainerRandomLargest_smoke"]) == 2


def test_inference_benchmark_warns_of_load_during_the_forward_passes(plans_file, tmp_path, capsys, monkeypatch):
    """The single forward passes are timed in a few seconds: other work then gets its own warning and figure,
    which the whole run's average would hide."""
    from nnunet_pruning.app import machine, timing

    class Busy(machine.OtherCpuLoad):
        def stop(self):
            self.cores = 1.0
            return self.cores

    monkeypatch.setattr(timing, "OtherCpuLoad", Busy)
    out = tmp_path / "inference.json"
    assert _load("benchmark_inference").main(["--plans", plans_file, "--shape", "8", "8", "8", "--volumes", "1",
                                              "--warmup", "0", "--repeats", "1", "--device", "cpu", "--minimal",
                                              "--json", str(out)]) == 0
    assert "[benchmark cpu] warning: other processes kept 1.00 CPU cores busy on average during the forward-pass " \
           "timing;" in \
        capsys.readouterr().out
    assert {t["other_cpu_cores_forward"] for t in json.loads(out.read_text())["devices"]["cpu"].values()} == {1.0}
