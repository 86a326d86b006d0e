"""Every misuse a user can make of the CLI ends in one line on stderr and exit status 2."""

import json
import os

import pytest

from nnunet_pruning.adapter import environment
from nnunet_pruning.app import cli


def _error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("nnunet-pruning: error: ") and "\n" not in err
    return err


@pytest.fixture
def preprocessed(tmp_path, monkeypatch):
    """A fake nnUNet_preprocessed with one dataset and default-like 3D plans."""
    from nnunet_pruning.adapter.architectures import unet_spec

    spec = unet_spec("plain", dim=3, n_stages=4)
    folder = tmp_path / "pre" / "Dataset777_Fake"
    folder.mkdir(parents=True)
    plans = {"dataset_name": "Dataset777_Fake", "plans_name": "nnUNetPlans", "configurations": {"3d_fullres": {
        "data_identifier": "nnUNetPlans_3d_fullres", "patch_size": [64, 64, 64], "architecture": {
            "network_class_name": spec.network_arch_class_name, "arch_kwargs": spec.network_arch_init_kwargs,
            "_kw_requires_import": spec.network_arch_init_kwargs_req_import}}}}
    (folder / "nnUNetPlans.json").write_text(json.dumps(plans))
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "pre"))
    return folder


def test_flat_plans_writes_file(preprocessed, capsys):
    assert cli.main(["flat-plans", "777", "--width", "16"]) == 0
    flat = json.loads((preprocessed / "nnUNetPlansFlat16.json").read_text())
    assert flat["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["features_per_stage"] == [16] * 4
    assert "-p nnUNetPlansFlat16" in capsys.readouterr().out


@pytest.mark.parametrize("width", ["0", "-1", "100000"])
def test_width_below_one(preprocessed, capsys, width):
    assert cli.main(["flat-plans", "777", "--width", width]) == 2
    assert "width must be a whole number from 1 to 1024" in _error(capsys)
    assert sorted(os.listdir(preprocessed)) == ["nnUNetPlans.json"]  # nothing written


def test_unknown_dataset(preprocessed, capsys):
    assert cli.main(["flat-plans", "123"]) == 2
    assert "unknown dataset 123" in _error(capsys)


def test_missing_env_var(monkeypatch, capsys):
    monkeypatch.delenv("nnUNet_preprocessed", raising=False)
    assert cli.main(["flat-plans", "777"]) == 2
    assert "nnUNet_preprocessed is not set" in _error(capsys)


def test_make_dataset_without_raw(monkeypatch, capsys):
    monkeypatch.delenv("nnUNet_raw", raising=False)
    assert cli.main(["make-dataset", "--size", "16"]) == 2
    assert "nnUNet_raw is not set" in _error(capsys)


@pytest.mark.parametrize("command", [["flat-plans", "777"], ["count", "777", "-c", "3d_fullres"]])
def test_wrong_nnunet_version(preprocessed, monkeypatch, capsys, command):
    monkeypatch.setattr(environment, "nnunet_version", lambda: "2.5.6")
    assert cli.main(command) == 2
    assert "nnunetv2 2.5.6 is installed but nnunet_pruning needs >=2.8.1,<2.9" in _error(capsys)


def test_count_needs_configuration(preprocessed, capsys):
    assert cli.main(["count", "777"]) == 2
    assert "needs a configuration" in _error(capsys)


def test_count_unknown_configuration(preprocessed, capsys):
    (preprocessed / "dataset.json").write_text(json.dumps({"channel_names": {"0": "x"}, "labels": {
        "background": 0, "a": 1}, "numTraining": 1, "file_ending": ".nii.gz"}))
    assert cli.main(["count", "777", "-c", "2d"]) == 2
    assert "configuration 2d is not in" in _error(capsys)


def test_count_plans_flat_vs_stock(preprocessed, capsys):
    """The acceptance figure: Flat-32 of a 4-stage default 3D plan, counted by the same code as stock."""
    (preprocessed / "dataset.json").write_text(json.dumps({"channel_names": {"0": "x"}, "labels": {
        "background": 0, "a": 1, "b": 2}, "numTraining": 1, "file_ending": ".nii.gz"}))
    results = {}
    for trainer in ("nnUNetTrainer", "nnUNetTrainerFlatUNet"):
        assert cli.main(["count", "777", "-c", "3d_fullres", "-tr", trainer, "--json"]) == 0
        results[trainer] = json.loads(capsys.readouterr().out)["networks"]["plans"]
    stock, flat = results["nnUNetTrainer"], results["nnUNetTrainerFlatUNet"]
    assert stock["params"] / flat["params"] >= 11.5
    assert 1 - flat["gflops"] / stock["gflops"] >= 0.35
    assert all(w == [32] * len(w) for k, w in flat["widths"].items() if "seg_layers" not in k)


def test_count_unknown_trainer(preprocessed, capsys):
    (preprocessed / "dataset.json").write_text(json.dumps({"channel_names": {"0": "x"}, "labels": {
        "background": 0, "a": 1}, "numTraining": 1, "file_ending": ".nii.gz"}))
    assert cli.main(["count", "777", "-c", "3d_fullres", "-tr", "NoSuchTrainer"]) == 2
    assert "trainer NoSuchTrainer not found" in _error(capsys)


def test_count_not_a_model_folder(tmp_path, capsys):
    assert cli.main(["count", str(tmp_path)]) == 2
    assert "not a trained nnU-Net model folder" in _error(capsys)


def test_env_prints_exports(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("nnUNet_extTrainer", raising=False)
    assert cli.main(["env", "--base", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"export nnUNet_extTrainer={environment.ext_trainer_folder()}" in out
    assert f"export nnUNet_results={tmp_path / 'nnUNet_results'}" in out


def test_env_check_reports_missing(monkeypatch, capsys):
    for name in environment.PATH_VARIABLES + ("nnUNet_extTrainer",):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["env", "--check"]) == 1
    err = capsys.readouterr().err
    for name in environment.PATH_VARIABLES + ("nnUNet_extTrainer",):
        assert f"{name} is not set" in err


@pytest.mark.parametrize("value, message", [(None, "nnUNet_extTrainer is not set"),
                                            ("/somewhere/else", "nnUNet_extTrainer=/somewhere/else does not include")])
def test_compare_timing_needs_ext_trainer(monkeypatch, tmp_path, capsys, value, message):
    """nnU-Net's predictor finds our trainers only through nnUNet_extTrainer: say so before doing anything."""
    if value is None:
        monkeypatch.delenv("nnUNet_extTrainer", raising=False)
    else:
        monkeypatch.setenv("nnUNet_extTrainer", value)
    out = tmp_path / "out"
    assert cli.main(["compare", "nnUNetTrainer", "nnUNetTrainerSTAMP", "-d", "4", "-c", "3d_fullres", "--time",
                     "-o", str(out)]) == 2
    error = _error(capsys)
    assert message in error and f"export nnUNet_extTrainer={environment.ext_trainer_folder()}" in error
    assert not out.exists()


def test_compare_needs_two_models(capsys, tmp_path):
    assert cli.main(["compare", str(tmp_path)]) == 2
    assert "at least two models" in _error(capsys)


@pytest.mark.parametrize("models, time, expected", [
    (["nnUNetTrainerSTAMP"], "nnUNetTrainer", (["nnUNetTrainer", "nnUNetTrainerSTAMP"], "auto")),
    (["a", "b"], None, (["a", "b"], None)),
    (["a", "b"], "auto", (["a", "b"], "auto")),
    (["a", "b"], "./missing/images", (["a", "b"], "./missing/images")),
])
def test_time_does_not_swallow_the_baseline(models, time, expected):
    """Issue 14.5: `compare -d D -c C --time A B` must compare A and B, not time the images folder A."""
    assert cli.split_time_argument(models, time) == expected


def test_time_with_a_folder_of_images_or_a_model_folder(tmp_path):
    images, model = tmp_path / "imagesTs", tmp_path / "m__nnUNetPlans__3d_fullres"
    images.mkdir()
    model.mkdir()
    (model / "plans.json").write_text("{}")
    assert cli.split_time_argument(["a", "b"], str(images)) == (["a", "b"], str(images))
    assert cli.split_time_argument(["b"], str(model)) == ([str(model), "b"], "auto")


@pytest.mark.parametrize("argv, module, function", [
    (["compare", "/my models/a", "/my models/b", "-o", "out dir"], "compare", "run_compare"),
    (["benchmark", "-o", "my bench", "--task", "fine", "-f", "0", "1"], "benchmark", "run_benchmark")])
def test_the_command_line_in_a_report_is_shell_quoted(argv, module, function, monkeypatch):
    """Issue 14.6: the report's Command: line runs as printed, paths with spaces included (benchmark's too)."""
    import importlib
    import shlex

    seen = {}
    monkeypatch.setattr(importlib.import_module(f"nnunet_pruning.app.{module}"), function,
                        lambda *a, **k: seen.update(k))
    monkeypatch.setattr("sys.argv", ["elsewhere"])  # what main() was given counts, not the process's argv
    monkeypatch.setenv("nnUNet_extTrainer", environment.ext_trainer_folder())
    assert cli.main(argv) == 0
    assert shlex.split(seen["command"]) == ["nnunet-pruning", *argv]


@pytest.mark.parametrize("source, message", [("./no/such/folder", "does not exist"),
                                             ("missing_plans.json", "does not exist")])
def test_count_on_a_missing_path(source, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["count", source]) == 2
    error = _error(capsys)
    assert message in error and "neither an id" not in error


def test_count_on_a_checkpoint_file(tmp_path, capsys):
    path = tmp_path / "checkpoint_final.pth"
    path.write_bytes(b"x")
    assert cli.main(["count", str(path)]) == 2
    assert "is a file; count takes a trained model folder" in _error(capsys)


def test_flat_plans_accepts_the_plans_file_name(preprocessed, capsys):
    """Issue 14.5: --plans nnUNetPlans.json must not look for nnUNetPlans.json.json."""
    assert cli.main(["flat-plans", "777", "--width", "16", "--plans", "nnUNetPlans.json"]) == 0
    assert (preprocessed / "nnUNetPlansFlat16.json").is_file()


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["flat-plans", "777", "--width", "abc"])
    assert e.value.code == 2
    assert "invalid int value: 'abc'; see nnunet-pruning flat-plans --help" in _error(capsys)


def test_demo_checks_its_trainers_before_any_work(tmp_path, capsys):
    """Issue 14.5: an unknown trainer stops the demo before it makes, plans or trains anything."""
    out = tmp_path / "demo"
    assert cli.main(["demo", "--output", str(out), "--trainers", "nnUNetTrainer", "nnUNetTrainerNope"]) == 2
    assert "trainer nnUNetTrainerNope not found" in _error(capsys) and not out.exists()


def test_backend_choices_are_the_runtime_settings():
    from nnunet_pruning.core.runtime_forward import SETTINGS

    assert cli.BACKEND_SETTINGS == SETTINGS


def test_help_names_the_default_trainers_from_where_they_are_defined(capsys):
    from nnunet_pruning.app.benchmark import DEFAULT_TRAINERS
    from nnunet_pruning.app.demo import DEMO_TRAINERS

    for command, names in (("demo", [t for _, t in DEMO_TRAINERS]), ("benchmark", DEFAULT_TRAINERS)):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert [name for name in names if name not in text] == [], command


@pytest.mark.parametrize("command", [["benchmark", "-o", "bench"], ["demo", "--output", "demo"]])
def test_a_device_this_machine_lacks_is_one_line_before_anything_is_written(tmp_path, monkeypatch, capsys, command):
    """benchmark and demo train, predict and time on --device; CUDA asked for where there is none: one line, and
    no workspace made."""
    import torch

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli.main([*command, "--device", "cuda"]) == 2
    assert "device cuda asked for, but CUDA is not available on this machine; use --device cpu" in _error(capsys)
    assert os.listdir(tmp_path) == []
    with pytest.raises(SystemExit):
        cli.main([*command, "--device", "tpu"])
    assert "invalid choice: 'tpu'" in _error(capsys)


def test_a_cpu_runtime_backend_with_a_gpu_benchmark_is_one_line(tmp_path, monkeypatch, capsys):
    import torch

    from nnunet_pruning.core import runtimes

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(runtimes, "require", lambda backend: None)
    assert cli.main(["benchmark", "--device", "cuda", "--backend", "onnxruntime"]) == 2
    assert "--backend onnxruntime runs on the CPU here; drop it with --device cuda" in _error(capsys)
    assert os.listdir(tmp_path) == []


def test_the_run_options_are_the_pipelines():
    """benchmark's and demo's --device and -c choices are app/pipeline.py's (spelled in the parser, which imports
    no pipeline)."""
    from nnunet_pruning.app.pipeline import CONFIGURATIONS, DEVICES

    for command in ("benchmark", "demo"):
        sub = next(a for a in cli.build_parser()._actions if a.dest == "command").choices[command]
        choices = {a.dest: a.choices for a in sub._actions}
        assert tuple(choices["device"]) == DEVICES and tuple(choices["configuration"]) == CONFIGURATIONS
