"""The interruption table (issue 23): each long command killed at several points, by SIGINT or SIGKILL in turn,
run again until it ends, ends with what an uninterrupted run gives. ``demo`` and ``benchmark``:
tests/e2e/test_demo_and_benchmark.py (their session job runs interrupted); ``make-dataset``: here."""

import hashlib
import os
import signal

import pytest

from nnunet_pruning.adapter.datasets import folders_with_id

from .interrupt import interrupt_and_resume, run_once

pytestmark = pytest.mark.e2e

MAKE = ["make-dataset", "--id", "973", "--size", "32", "--train", "6", "--test", "2", "--seed", "4"]


def _digests(folder: str) -> dict:
    return {os.path.relpath(os.path.join(d, f), folder): hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest()
            for d, _, files in os.walk(folder) for f in files}


def test_make_dataset_interrupted_anywhere_ends_with_the_same_dataset(tmp_path):
    from .conftest import E2EWorkspace

    ws = E2EWorkspace(str(tmp_path / "ws"))
    executable = ws.executable("nnunet-pruning")
    reference_raw, raw = tmp_path / "reference", tmp_path / "raw"
    reference = run_once([executable, *MAKE, "--raw", str(reference_raw)], ws.env, ws.root)
    assert reference.returncode == 0, reference.stderr
    points = [(r"make-dataset: 2/8 cases", 0.0, signal.SIGINT), (r"make-dataset: 4/8 cases", 0.0, signal.SIGKILL),
              (r"make-dataset: 6/8 cases", 0.0, signal.SIGINT)]
    record = interrupt_and_resume([executable, *MAKE, "--raw", str(raw)], ws.env, ws.root, points)
    assert record.problems() == []
    for attempt in record.attempts[:-1]:  # never half a dataset under its id; SIGINT leaves no staging folder
        assert attempt.hit
    name = folders_with_id(str(raw), 973)
    assert name == ["Dataset973_SyntheticShapes"]
    assert _digests(str(raw / name[0])) == _digests(str(reference_raw / name[0]))
    leftovers = [f for f in os.listdir(raw) if f.endswith(".partial")]
    assert len(leftovers) <= sum(a.sig == signal.SIGKILL for a in record.attempts)  # only what a crash left
    again = run_once([executable, *MAKE, "--raw", str(raw)], ws.env, ws.root)  # the same command once more: kept
    assert again.returncode == 0 and "kept" in again.stdout
