"""The workspace that runs the stock commands: failures and hangs end in one line that names the command and
the log; the demo turns them into nnunet-pruning's one-line error."""

import pytest

from nnunet_pruning.app import cli
from nnunet_pruning.app.interrupts import Terminated
from nnunet_pruning.app.workspace import CommandFailed, NnUNetWorkspace


def test_failing_command_names_itself_its_last_line_and_the_log(tmp_path):
    ws = NnUNetWorkspace(str(tmp_path))
    log = str(tmp_path / "commands.log")
    with pytest.raises(CommandFailed) as caught:
        ws.run("python", "-c", "import sys; print('first'); print('ValueError: boom'); sys.exit(3)", log=log)
    line = caught.value.one_line()
    assert line.startswith("`python -c import sys;") and "failed with exit 3 (ValueError: boom)" in line
    assert line.endswith(f"its full output is in {log}") and "\n" not in line
    assert "first\nValueError: boom" in open(log).read()


def test_silent_hanging_command_is_stopped_at_the_timeout(tmp_path):
    ws = NnUNetWorkspace(str(tmp_path))
    with pytest.raises(CommandFailed) as caught:
        ws.run("python", "-c", "import time; time.sleep(60)", timeout=1)
    assert "ran longer than 1 s and was stopped (no output)" in caught.value.one_line()


def test_demo_failure_is_one_line(monkeypatch, capsys):
    def fail(output, trainers, dataset=None, device="cpu", configuration="3d_fullres"):
        raise CommandFailed(("nnUNetv2_train", "900", "3d_fullres", "0"), "failed with exit 1",
                            "Traceback ...\nRuntimeError: out of memory\n", "demo_output/commands.log")

    monkeypatch.setattr("nnunet_pruning.app.demo.run_demo", fail)
    assert cli.main(["demo"]) == 2
    err = capsys.readouterr().err
    assert err == ("nnunet-pruning: error: the demo stopped: `nnUNetv2_train 900 3d_fullres 0` failed with exit 1 "
                   "(RuntimeError: out of memory); its full output is in demo_output/commands.log; fix that and "
                   "rerun the same command (finished models are kept)\n")


def test_an_interrupted_command_is_stopped_killed_if_it_lingers():
    """Ctrl-C / SIGTERM of ours: the running command gets SIGINT, and SIGKILL after the grace."""
    import subprocess
    import sys
    import time

    from nnunet_pruning.app.workspace import _stop

    polite = subprocess.Popen([sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    assert polite.stdout.readline().strip() == "ready"
    _stop(polite, grace=30)
    assert polite.returncode == -2  # an uncaught KeyboardInterrupt: Python ends by SIGINT itself
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGINT, "
                                 "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"],
                                stdout=subprocess.PIPE, text=True)
    assert stubborn.stdout.readline().strip() == "ready"
    started = time.time()
    _stop(stubborn, grace=1)
    assert stubborn.returncode == -9 and time.time() - started < 10


@pytest.mark.parametrize("interruption, status, name", [(KeyboardInterrupt, 130, "SIGINT"),
                                                        (Terminated, 143, "SIGTERM")])
def test_interrupted_commands_end_in_one_line_with_the_signals_status(monkeypatch, capsys, interruption, status,
                                                                      name):
    def interrupted(args):
        raise interruption()

    monkeypatch.setattr(cli, "_cmd_trainers", interrupted)
    assert cli.main(["trainers"]) == status
    err = capsys.readouterr().err.strip()
    assert err == (f"nnunet-pruning: interrupted ({name}): every finished step is kept; rerun the same command to "
                   f"go on from where it stopped")


def test_a_forked_worker_ends_on_sigterm_as_without_us(tmp_path):
    """nnU-Net's predictor ends its pool's workers with SIGTERM: a worker forked inside a command must die quietly
    (no Terminated traceback), while the command itself still turns SIGTERM into its one line. (In a fresh
    interpreter: a fork of this test process, with its threads, is not what a command forks.)"""
    import subprocess
    import sys

    code = """
import os, signal, sys, time
from nnunet_pruning.app.interrupts import Terminated, sigterm_as_interrupt
read, write = os.pipe()
with sigterm_as_interrupt():
    pid = os.fork()
    if pid == 0:  # the worker: waits until killed; anything it would print goes to the pipe
        os.dup2(write, 2)
        try:
            time.sleep(30)
        finally:
            os._exit(0)
    time.sleep(0.3)
    os.kill(pid, signal.SIGTERM)
    _, status = os.waitpid(pid, 0)
    os.close(write)
    printed = os.read(read, 10000)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM, status
    assert printed == b"", printed
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    except Terminated:
        print("the command itself: Terminated")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "the command itself: Terminated"


def test_console_scripts_beside_the_interpreter_else_on_path(tmp_path, monkeypatch):
    """The venv's bin first; a --user or --target install has its scripts elsewhere, on PATH."""
    import sys

    from nnunet_pruning.core.errors import PruningError

    venv, elsewhere = tmp_path / "venv" / "bin", tmp_path / "local" / "bin"
    for folder in (venv, elsewhere):
        folder.mkdir(parents=True)
    for path in (venv / "python", venv / "nnUNetv2_train", elsewhere / "nnUNetv2_train", elsewhere / "nnUNetv2_predict"):
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(venv / "python"))
    monkeypatch.setenv("PATH", str(elsewhere))
    assert NnUNetWorkspace.executable("nnUNetv2_train") == str(venv / "nnUNetv2_train")
    assert NnUNetWorkspace.executable("nnUNetv2_predict") == str(elsewhere / "nnUNetv2_predict")
    with pytest.raises(PruningError, match="nnUNetv2_evaluate_folder not found beside .* nor on PATH; install"):
        NnUNetWorkspace.executable("nnUNetv2_evaluate_folder")
