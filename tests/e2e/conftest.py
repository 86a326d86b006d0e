"""Fixtures for end-to-end tests: one nnU-Net workspace per test session, driven through the real CLIs by the
package's own pipeline (``app/pipeline.py``, as ``demo`` and ``benchmark`` drive it).

One dataset is made and planned once; every model is trained once and shared. The models the tests share
(``SHARED``) train in the background, two at a time, from the end of collection on (beside the unit tests):
an ``nnUNetv2_train`` of a smoke model is mostly nnU-Net's start-up and validation, single-threaded.
``train(...)`` waits for a model (or trains one that is not shared). The tests' own commands run in the
background too, as jobs (``background_job``), after the shared models, so that both cores stay busy to the end
and the tests themselves mostly assert. Tests and jobs that change a model folder work on a copy
(``copy_model``, ``private_workspace``), so no test depends on another's side effects.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from nnunet_pruning.app.pipeline import Pipeline, SyntheticDataset
from nnunet_pruning.app.workspace import NnUNetWorkspace

DATASET_ID = 951
#: 16^3 cases: nnU-Net plans 3 stages (32-64-128) and a 16^3 patch; 5 training cases: one validation case per fold
DATASET = SyntheticDataset(DATASET_ID, "E2E", num_train=5, num_test=2, size=16, seed=3)
FLAT_TRAINER = "nnUNetTrainerFlatUNet16_smoke"
STOCK, STAMP, RANDOM_LARGEST = "nnUNetTrainerStock_smoke", "nnUNetTrainerSTAMP_smoke", "nnUNetTrainerRandomLargest_smoke"
#: a latency-targeted model, its settings in its name (table measured on 1 thread; the smoke budget)
LATENCY = "nnUNetTrainerRandomLargestLatency_keep60_cpu1_smoke"
#: a budget chosen by name, started from the stock model's weights (-pretrained_weights)
NAMED = "nnUNetTrainerRandomLargest_keep10_2epochs_2iters"
#: the models several tests use: (trainer, fold, needs the stock model's checkpoint); first those of the longest
#: background job (demo + benchmark, interrupted: tests/e2e/test_demo_and_benchmark.py), then the longest training
SHARED = [(STOCK, 0, False), (RANDOM_LARGEST, 0, False), (RANDOM_LARGEST, 1, False), (LATENCY, 0, False),
          (FLAT_TRAINER, 0, False), (STAMP, 0, False), (NAMED, 0, True)]
#: the extremes' dataset: 2 channels, anisotropic spacing (3 x 1 x 1: the first pooling skips the coarse axis; a
#: 3-stage 32-128 ResEnc network), planned with nnU-Net's ResEnc-M planner (3d_fullres; 2D networks, Plain and
#: ResEnc, train, prune and predict through nnU-Net's trainer and predictor in tests/trainers/test_extremes.py)
MULTI = 954
RESENC_PLANS = "nnUNetResEncUNetMPlans"
EXTREMES = [("3d_fullres", "nnUNetTrainerRandomLargest_smoke")]


class E2EWorkspace(NnUNetWorkspace):
    """A workspace whose failing commands fail the test with their output. Its networks predict on PyTorch
    (``nnUNet_pruning_backend=torch``): ``auto``, the default, chooses by timing, and the tests that compare
    predictions of two runs need the same backend in both; ``auto`` itself is run end to end by
    tests/e2e/test_pruning_trainers.py (two folds)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.env["nnUNet_pruning_backend"] = "torch"

    def run(self, *command, **kwargs) -> str:
        try:
            return super().run(*command, **kwargs)
        except RuntimeError as e:
            pytest.fail(str(e), pytrace=False)

    def count_json(self, *args) -> dict:
        """``nnunet-pruning count ... --json`` in-process (``cli.main``, this workspace's variables set);
        stdout must be pure JSON. (tests/e2e/test_flat_pipeline.py runs it once as a real command.)"""
        from nnunet_pruning.app import cli

        out, err = io.StringIO(), io.StringIO()
        with self.exported(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["count", *args, "--json"])
        assert code == 0, err.getvalue()[-3000:]
        return json.loads(out.getvalue())

    def count_json_subprocess(self, *args) -> dict:
        """``nnunet-pruning count ... --json`` as a real command."""
        result = subprocess.run([self.executable("nnunet-pruning"), "count", *args, "--json"], env=self.env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout)

    @property
    def raw_dataset(self) -> str:
        return f"{self.raw}/{self.dataset_name(DATASET_ID)}"


#: the timeline's clock, bound at import: unit tests that fake a module's clock cannot shift it
_clock = time.perf_counter


class Trainings:
    """Runs ``pipeline.train`` for each (trainer, fold, extra) once, on two threads; ``get`` waits for it."""

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="e2e-train")
        self.futures: dict[tuple, Future] = {}
        self.lock = threading.Lock()
        self.started = _clock()
        #: (what, seconds after the start when it began, when it ended): the timeline the session prints at its end
        self.timeline: list[tuple[str, float, float]] = []

    def submit(self, key: tuple, work) -> Future:
        with self.lock:
            if key not in self.futures:
                self.futures[key] = self.pool.submit(self._timed, key, work)
            return self.futures[key]

    def _timed(self, key: tuple, work):
        began = _clock() - self.started
        try:
            return work()
        finally:
            what = " ".join(str(part) for part in key if part != ())
            self.timeline.append((what, began, _clock() - self.started))

    def timeline_lines(self) -> list[str]:
        """One line per piece of background work, by start: when it began and ended, seconds after collection."""
        return [f"{began:7.1f} s -> {ended:7.1f} s ({ended - began:6.1f} s)  {what}"
                for what, began, ended in sorted(self.timeline, key=lambda item: item[1])]

    def train(self, trainer: str, fold=0, *extra: str) -> str:
        return self.submit((trainer, fold, extra), lambda: self.pipeline.train(trainer, fold, *extra)).result()

    def job(self, name: str):
        return self.futures[("job", name)].result()

    def extreme(self, configuration: str, trainer: str) -> str:
        return self.futures[("extreme", configuration, trainer)].result()

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


_STARTED: dict[str, object] = {}
#: name -> (the tests it serves, work(trainings, folder)): the commands of e2e tests, run in the background after
#: the shared models, in this order (the longest first), so that the tests themselves only assert (they may wait
#: only for ``SHARED`` models: a job that queued new work and waited for it could block the pool); the tests
#: assert on what it returns (``trainings.job(name)``)
_JOBS: dict[str, tuple[int, tuple[str, ...], object]] = {}


def background_job(name: str, *more_tests: str, order: int = 0):
    """Register the commands of the test ``name`` (and of ``more_tests``, which read the same result) to run in
    the background (see ``_JOBS``); it runs when one of these tests is selected. Jobs start by ``order`` (lower
    first: the longest get a lower one, so that the last jobs to start are short and both cores stay busy to the
    end), then in the order they were registered."""
    def register(work):
        _JOBS[name] = (order, (name, *more_tests), work)
        return work
    return register


def private_workspace(trainings: "Trainings", folder, trainers: tuple[str, ...]) -> E2EWorkspace:
    """A workspace of its own under ``folder``: the session dataset (raw and preprocessed) and the model folders of
    ``trainers``, copied once they are trained; for a job that checks that its commands change nothing (other
    jobs write into the session's workspace meanwhile)."""
    ws = trainings.pipeline.ws
    for trainer in trainers:
        shared(trainings, trainer)
    own = E2EWorkspace(str(folder / "ws"), threads=1)
    name = ws.dataset_name(DATASET_ID)
    for source, target in ((ws.raw, own.raw), (ws.preprocessed, own.preprocessed)):
        shutil.copytree(os.path.join(source, name), os.path.join(target, name))
    for trainer in trainers:
        model = ws.model_folder(DATASET_ID, trainer)
        shutil.copytree(model, os.path.join(own.results, name, os.path.basename(model)))
    return own


def shared(trainings: "Trainings", trainer: str, fold: int = 0) -> str:
    """The fold folder of a shared model, once trained (for background jobs)."""
    return trainings.futures[(trainer, fold, ())].result()


def start_background(tmp_path_factory, tests: set[str] | None = None) -> Trainings:
    """Start (once) the e2e work that needs no test: make and plan the dataset, train the shared models, plan
    and train the extremes. tests/conftest.py calls this when collection ends, so it runs beside the unit
    tests (nnU-Net's commands are mostly single-threaded start-up); the fixtures below wait for it."""
    if "trainings" not in _STARTED:
        workspace = E2EWorkspace(str(tmp_path_factory.mktemp("nnunet")), threads=1)
        pipeline = Pipeline(workspace, DATASET_ID)
        trainings = Trainings(pipeline)
        prepared = trainings.submit(("prepare", DATASET_ID), lambda: (pipeline.make_dataset(DATASET),
                                                                    pipeline.plan(processes=1)))
        for trainer, fold, pretrained in SHARED:
            def work(t=trainer, f=fold, p=pretrained):
                prepared.result()
                if p:
                    stock = os.path.join(trainings.futures[(STOCK, 0, ())].result(), "checkpoint_final.pth")
                    return pipeline.train(t, f, "-pretrained_weights", stock)
                return pipeline.train(t, f)
            trainings.submit((trainer, fold, ()), work)
        planned = trainings.submit(("plan", MULTI), lambda: _plan_multichannel(workspace))
        for configuration, trainer in EXTREMES:
            trainings.submit(("extreme", configuration, trainer), lambda c=configuration, t=trainer: (
                planned.result(), Pipeline(workspace, MULTI, configuration=c).train(t, 0, plans=RESENC_PLANS))[1])
        jobs = tmp_path_factory.mktemp("jobs")
        for name, (_, served, work) in sorted(_JOBS.items(), key=lambda item: item[1][0]):
            if tests is not None and not set(served) & tests:  # none of its tests is selected
                continue
            folder = jobs / name
            folder.mkdir()
            trainings.submit(("job", name), lambda w=work, f=folder: w(trainings, f))
        _STARTED.update(trainings=trainings, workspace=workspace, pipeline=pipeline, prepared=prepared)
    return _STARTED["trainings"]


@pytest.fixture(scope="session")
def trainings(tmp_path_factory):
    """The shared models and the extremes' dataset, trained in the background (started early, or now)."""
    trainings = start_background(tmp_path_factory)
    yield trainings
    trainings.shutdown()


@pytest.fixture(scope="session")
def pipeline(trainings) -> Pipeline:
    """The session's pipeline: a tiny 3D synthetic dataset, made, planned and preprocessed with the real CLIs."""
    _STARTED["prepared"].result()
    return _STARTED["pipeline"]


def _plan_multichannel(ws: E2EWorkspace) -> None:
    ws.run("nnunet-pruning", "make-dataset", "--id", str(MULTI), "--name", "TwoChannelAniso", "--train", "5",
           "--test", "1", "--size", "16", "16", "16", "--channels", "2", "--spacing", "3", "1", "1", "--seed", "5")
    ws.run("nnUNetv2_plan_and_preprocess", "-d", str(MULTI), "-c", "3d_fullres", "-pl", "nnUNetPlannerResEncM",
           "-np", "1", "-npfp", "1", extra_env={"nnUNet_n_proc_DA": "1"})


@pytest.fixture(scope="session")
def planned_dataset(pipeline) -> E2EWorkspace:
    return pipeline.ws


@pytest.fixture(scope="session")
def train(trainings):
    """train(trainer, fold, *extra) -> the fold folder, trained once per session (shared models: in the
    background; others: now)."""
    return trainings.train


@pytest.fixture(scope="session")
def trained_flat(planned_dataset, train) -> E2EWorkspace:
    """Fold 0 of a Flat-16 U-Net trained for 2 iterations with the real nnUNetv2_train."""
    train(FLAT_TRAINER)
    return planned_dataset


@pytest.fixture(scope="session")
def copy_model(planned_dataset, tmp_path_factory):
    """copy_model(trainer) -> (env, folder): a copy of the trained model folder in a results folder of its own,
    so what the test adds (folds, files) is seen by no other test. ``env`` points nnU-Net at it."""
    def copy(trainer: str) -> tuple[dict, str]:
        ws = planned_dataset
        results = tmp_path_factory.mktemp("copy") / "nnUNet_results"
        source = ws.model_folder(DATASET_ID, trainer)
        folder = str(results / ws.dataset_name(DATASET_ID) / os.path.basename(source))
        shutil.copytree(source, folder)
        return {"nnUNet_results": str(results)}, folder
    return copy
