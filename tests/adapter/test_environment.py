import os

import pytest

from nnunet_pruning.adapter import environment
from nnunet_pruning.core.errors import PruningError


@pytest.mark.parametrize("version,ok", [("2.8.1", True), ("2.8.5", True), ("2.8.0", False), ("2.9.0", False),
                                        ("2.5.6", False), (None, False)])
def test_version_check(version, ok, monkeypatch):
    monkeypatch.setattr(environment, "nnunet_version", lambda: version)
    problem = environment.check_nnunet_version()
    assert (problem is None) == ok
    if not ok:
        assert "\n" not in problem and "pip install 'nnunetv2>=2.8.1,<2.9'" in problem


def test_installed_version_is_supported():
    assert environment.check_nnunet_version() is None


def test_missing_and_nonexistent_path_variable(monkeypatch, tmp_path):
    monkeypatch.delenv("nnUNet_raw", raising=False)
    with pytest.raises(PruningError, match="nnUNet_raw is not set"):
        environment.require_path_variable("nnUNet_raw")
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "nope"))
    with pytest.raises(PruningError, match="does not exist"):
        environment.require_path_variable("nnUNet_raw")
    monkeypatch.setenv("nnUNet_raw", str(tmp_path))
    assert environment.require_path_variable("nnUNet_raw") == str(tmp_path)


def test_ext_folder_holds_only_the_reexport_module():
    folder = environment.ext_trainer_folder()
    assert sorted(f for f in os.listdir(folder) if f.endswith(".py")) == ["nnunet_pruning_trainers.py"]
    assert not os.path.exists(os.path.join(folder, "__init__.py"))


def test_shell_lines_keep_other_ext_folders(monkeypatch, tmp_path):
    monkeypatch.setenv("nnUNet_extTrainer", str(tmp_path))
    lines = environment.shell_lines(base=str(tmp_path / "base"))
    ext = [l for l in lines if l.startswith("export nnUNet_extTrainer=")][0]
    assert ext == f"export nnUNet_extTrainer={environment.ext_trainer_folder()}{os.pathsep}{tmp_path}"
    assert f"export nnUNet_raw={tmp_path / 'base' / 'nnUNet_raw'}" in lines


def test_environment_problems(monkeypatch, tmp_path):
    for name in environment.PATH_VARIABLES:
        monkeypatch.setenv(name, str(tmp_path))
    monkeypatch.setenv("nnUNet_extTrainer", environment.ext_trainer_folder())
    assert environment.environment_problems() == []
    monkeypatch.setenv("nnUNet_extTrainer", str(tmp_path))
    monkeypatch.delenv("nnUNet_results")
    problems = environment.environment_problems()
    assert len(problems) == 2
    assert any("nnUNet_results is not set" in p for p in problems)
    assert any("does not include" in p for p in problems)


@pytest.mark.parametrize("base", ["my base ü", "x;touch INJECTED", "it's $(touch INJECTED) `touch INJECTED`"])
def test_env_lines_are_shell_quoted(tmp_path, monkeypatch, base):
    """Issue 14.1: eval "$(nnunet-pruning env --base ...)" sets exactly the paths and never runs a command."""
    import subprocess

    monkeypatch.delenv("nnUNet_extTrainer", raising=False)
    monkeypatch.chdir(tmp_path)
    lines = environment.shell_lines(base)
    script = "\n".join(lines) + '\nprintf "%s\\n" "$nnUNet_raw" "$nnUNet_preprocessed" "$nnUNet_results" ' \
                                '"$nnUNet_extTrainer"\n'
    result = subprocess.run(["bash", "-c", 'eval "$(cat)"'], input=script, capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    expected = [os.path.join(str(tmp_path), base, n) for n in environment.PATH_VARIABLES]
    assert result.stdout.splitlines() == expected + [environment.ext_trainer_folder()]
    assert sorted(os.listdir(tmp_path / base)) == sorted(environment.PATH_VARIABLES)
    assert os.listdir(tmp_path) == [base]  # no INJECTED file, no stray folder from a split path
