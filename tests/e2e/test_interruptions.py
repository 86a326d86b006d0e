"""The interruption table (issue 23): each long command killed at several points, by SIGINT or SIGKILL in turn,
run again until it ends, ends with what an uninterrupted run gives. ``demo`` and ``benchmark``:
tests/e2e/test_demo_and_benchmark.py (their session job runs interrupted); ``make-dataset``: here."""

import hashlib
import os
import signal

import pytest

from nnunet_pruning.adapter.datasets import folders_with_id

from .conftest import background_job
from .interrupt import interrupt_and_resume, run_once

pytestmark = pytest.mark.e2e

MAKE = ["make-dataset", "--id", "973", "--size", "32", "--train", "6", "--test", "2", "--seed", "4"]


def _digests(folder: str) -> dict:
    return {os.path.relpath(os.path.join(d, f), folder): hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest()
            for d, _, files in os.walk(folder) for f in files}


@background_job("test_make_dataset_interrupted_anywhere_ends_with_the_same_dataset")
def _commands(trainings, folder) -> dict:
    """make-dataset once straight, then interrupted at each point until it ends, then once more (in the
    background: it needs no model)."""
    from .conftest import E2EWorkspace

    ws = E2EWorkspace(str(folder / "ws"))
    executable = ws.executable("nnunet-pruning")
    reference_raw, raw = folder / "reference", folder / "raw"
    reference = run_once([executable, *MAKE, "--raw", str(reference_raw)], ws.env, ws.root)
    points = [(r"make-dataset: 2/8 cases", 0.0, signal.SIGINT), (r"make-dataset: 4/8 cases", 0.0, signal.SIGKILL),
              (r"make-dataset: 6/8 cases", 0.0, signal.SIGINT)]
    record = interrupt_and_resume([executable, *MAKE, "--raw", str(raw)], ws.env, ws.root, points)
    name = folders_with_id(str(raw), 973)
    digests = [_digests(str(raw / n)) for n in name] + [_digests(str(reference_raw / n)) for n in name]
    leftovers = [f for f in os.listdir(raw) if f.endswith(".partial")]
    again = run_once([executable, *MAKE, "--raw", str(raw)], ws.env, ws.root)  # the same command once more: kept
    return {"reference": reference, "record": record, "name": name, "digests": digests, "leftovers": leftovers,
            "again": again}


def test_make_dataset_interrupted_anywhere_ends_with_the_same_dataset(trainings):
    runs = trainings.job("test_make_dataset_interrupted_anywhere_ends_with_the_same_dataset")
    assert runs["reference"].returncode == 0, runs["reference"].stderr
    record = runs["record"]
    assert record.problems() == []
    for attempt in record.attempts[:-1]:  # never half a dataset under its id; SIGINT leaves no staging folder
        assert attempt.hit
    assert runs["name"] == ["Dataset973_SyntheticShapes"]
    assert runs["digests"][0] == runs["digests"][1]
    assert len(runs["leftovers"]) <= sum(a.sig == signal.SIGKILL for a in record.attempts)  # what a crash left
    again = runs["again"]
    assert again.returncode == 0 and "kept" in again.stdout
