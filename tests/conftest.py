"""Test ordering: fast unit tests on tiny networks first, the end-to-end CLI tests last; the end-to-end tests'
background work (dataset, plans, shared models: tests/e2e/conftest.py) starts when collection ends, beside the
unit tests.

Threads: the unit tests run torch on one thread (tiny networks gain nothing from two, and two threads that wait
for each other while nnU-Net's commands run beside them took 5-10x longer), and OpenMP threads sleep instead of
spinning while they wait (set before torch is imported; the commands of the e2e tests inherit it).

Backend: PyTorch (``nnUNet_pruning_backend=torch``, below).

Ctrl-C: the commands the interruption tests stop get SIGINT as from a terminal, whatever started the suite. A
suite started as a background job of a script (``cmd &``, ``nohup``) begins with SIGINT ignored, and every child
would inherit that (3 tests failed so); a handler of our own is reset to the default in each child.
"""

import os
import signal

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# This package's networks predict on PyTorch in the tests: `auto`, the users' default, would export and compile an
# OpenVINO model for every network a test runs in inference mode (measured: 47 s instead of 26 s for
# tests/trainers/test_extremes.py + tests/core/test_compiled.py). The tests of `auto` name it (use_runtime(...,
# "auto"), --backend auto, the e2e run's nnUNet_pruning_backend=auto) or unset the variable to see the default.
os.environ.setdefault("nnUNet_pruning_backend", "torch")


def pytest_configure(config):
    import torch

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    torch.set_num_threads(1)


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: "/e2e/" in f"/{item.nodeid}")  # stable: keeps the order within each part


def pytest_collection_finish(session):
    if session.config.option.collectonly or not any("/e2e/" in f"/{item.nodeid}" for item in session.items):
        return
    from tests.e2e.conftest import start_background

    start_background(session.config._tmp_path_factory, {item.originalname for item in session.items})


def pytest_sessionfinish(session, exitstatus):
    """Queued background work is cancelled when the session ends early (a failure with -x, Ctrl-C)."""
    import sys

    e2e = sys.modules.get("tests.e2e.conftest")
    if e2e is not None and "trainings" in e2e._STARTED:
        e2e._STARTED["trainings"].shutdown()


def pytest_terminal_summary(terminalreporter):
    """The e2e background work's timeline (it runs beside the unit tests; the suite's length is mostly its length):
    what to shorten when the suite grows slow."""
    import sys

    e2e = sys.modules.get("tests.e2e.conftest")
    if e2e is not None and "trainings" in e2e._STARTED:
        terminalreporter.section("e2e background work (seconds after collection)")
        for line in e2e._STARTED["trainings"].timeline_lines():
            terminalreporter.write_line(line)


@pytest.fixture
def fake_cuda(monkeypatch):
    """CPU tensors count as CUDA ones for core/cuda_inference.py, ``nnUNet_pruning_cuda_graphs=1``, and a capture is
    recorded (its input's shape) and replays the eager forward. Returns the list of captured shapes."""
    import torch

    from nnunet_pruning.core import cuda_inference

    captured = []

    def capture(forward, x):
        captured.append(tuple(x.shape))
        return (lambda new: forward(new).clone()), 3 * 2 ** 20
    monkeypatch.setattr(cuda_inference, "_on_cuda", lambda x: torch.is_tensor(x))
    monkeypatch.setattr(cuda_inference, "_capture", capture)
    monkeypatch.setenv("nnUNet_pruning_cuda_graphs", "1")
    return captured
