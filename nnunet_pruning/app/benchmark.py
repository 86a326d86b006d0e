"""``nnunet-pruning benchmark``: Dice over several runs, so a method comparison is more than one run's luck.

Every chosen trainer is trained on the same synthetic dataset and budget once per fold (nnU-Net's folds:
a different training split, a different pruning seed and nnU-Net's own unseeded randomness per run), its
fold predicts the held-out test cases (``imagesTs``) with ``nnUNetv2_predict`` and is scored with
``nnUNetv2_evaluate_folder``. Per method the report gives the mean +- sd of test Dice, the paired
difference to the baseline (first trainer) fold by fold with a 95% confidence interval, params, GFLOPs and
the predictor's measured time. Every command is a stock one (``commands.log``); finished runs are kept, so
an interrupted benchmark resumes where it stopped, and the runs an earlier invocation scored in the same
workspace (other trainers or folds) stay in results.json and runs.csv beside this one's.
"""

from __future__ import annotations

import os
import time

from nnunet_pruning.app.benchmark_report import write_benchmark_report
from nnunet_pruning.app.demo import THESIS_TRAINERS
from nnunet_pruning.core.errors import PruningError

__all__ = ["DEFAULT_TRAINERS", "BENCHMARK_DATASET_ID", "run_benchmark"]

BENCHMARK_DATASET_ID = 901
#: stock and the thesis' three methods on the demo budget, stock first
DEFAULT_TRAINERS = [name for _, name in THESIS_TRAINERS]


def _check_inputs(trainers: list[str], folds: list[str], output: str) -> None:
    from nnunet_pruning.adapter.networks import resolve_trainer
    from nnunet_pruning.app.compare import check_output_folder

    if len(trainers) < 2:
        raise PruningError("benchmark needs at least two trainers: the baseline first, then the ones to compare")
    if len(set(trainers)) != len(trainers):
        raise PruningError(f"a trainer is listed twice ({' '.join(trainers)}); list each once")
    bad = [f for f in folds if f not in ("0", "1", "2", "3", "4")]
    if bad or len(set(folds)) != len(folds):
        raise PruningError(f"folds must be distinct values of 0-4 (nnU-Net's 5-fold split), got {' '.join(folds)}")
    check_output_folder(output)
    for trainer in trainers:
        resolve_trainer(trainer)


def run_benchmark(output: str, trainers: list[str] | None = None, folds: list[str] | None = None, size: int = 32,
                  num_train: int = 10, num_test: int = 4, seed: int = 0, task: str = "shapes",
                  time_inference: bool = True,
                  progress=print, threads: int = 2, reference: str | None = None, dataset: str | None = None,
                  backend: str | None = None, command: str = "nnunet-pruning benchmark", device: str = "cpu",
                  configuration: str = "3d_fullres") -> dict:
    """Run (or resume) the benchmark into ``output``; returns ``{kind: path}`` of the report files.

    ``command``: the command line that reruns it (report.md and results.json quote it).

    ``reference``: one of ``trainers`` to report paired differences to, besides the baseline (the first).
    ``dataset``: a dataset of the user's nnU-Net folders (with imagesTs/labelsTs) instead of the synthetic one;
    its models train into ``$nnUNet_results`` (finished folds are reused).
    ``device``: what every run trains, predicts and is timed on (cpu, cuda, mps); a latency trainer measures its
    target there too. ``configuration``: the nnU-Net configuration every run trains and predicts (3d_fullres, 2d,
    3d_lowres)."""
    from nnunet_pruning.adapter.datasets import dataset_id
    from nnunet_pruning.app.pipeline import TRAINING_PROGRESS, Pipeline, SyntheticDataset, check_device
    from nnunet_pruning.app.workspace import NnUNetWorkspace

    trainers = list(trainers or DEFAULT_TRAINERS)
    folds = [str(f) for f in (folds or ["0", "1", "2"])]
    check_device(device)
    _check_inputs(trainers, folds, output)
    if reference is not None and reference not in trainers[1:]:
        raise PruningError(f"the reference {reference} must be one of the trainers after the baseline")
    if threads < 1:
        raise PruningError(f"--threads must be >= 1, not {threads}")
    if backend is not None:
        from nnunet_pruning.core.runtimes import require

        if backend != "auto":
            require(backend)
            if device != "cpu" and backend != "torch":
                raise PruningError(f"--backend {backend} runs on the CPU here; drop it with --device {device}")
        if not time_inference:
            raise PruningError(f"--backend {backend} chooses what runs the networks when timing; drop --no-time or "
                               f"--backend")
    from nnunet_pruning.trainers.guards import MIN_CASES_FOR_FOLDS

    if dataset is None and num_train < MIN_CASES_FOR_FOLDS:
        raise PruningError(f"--train {num_train}: nnU-Net's {MIN_CASES_FOR_FOLDS}-fold split needs at least "
                           f"{MIN_CASES_FOR_FOLDS} training cases (every fold is a run here)")
    started = time.time()

    def say(message: str) -> None:
        progress(f"[benchmark {time.time() - started:6.0f} s] {message}")

    if dataset is None:
        pipeline = Pipeline(NnUNetWorkspace(output, threads=threads), BENCHMARK_DATASET_ID, say=say, device=device,
                            configuration=configuration)
        pipeline.make_dataset(SyntheticDataset(BENCHMARK_DATASET_ID, "Benchmark", num_train, num_test, size, seed,
                                               task))
        pipeline.require_test_cases()
    else:
        pipeline = Pipeline.of_user_dataset(output, dataset_id(dataset), threads, say=say, device=device,
                                            configuration=configuration)
    ws, name = pipeline.ws, pipeline.name
    say(f"workspace {ws.root}; {len(trainers)} trainers x {len(folds)} folds, {configuration}, on {device}; full "
        f"command output in {pipeline.log}")
    pipeline.plan(trust_existing=dataset is not None)
    todo = [(trainer, fold) for fold in folds for trainer in trainers]  # fold by fold: a stopped benchmark already
    runs = pipeline.test_runs(todo, lambda trainer, fold: f"{trainer} fold {fold}",  # has complete pairs
                              progress=TRAINING_PROGRESS)
    other_runs = _other_scored_runs(pipeline, runs, say)
    timing = None
    if time_inference:
        timing = _time_first_fold(pipeline, trainers, folds[0], say, backend)
    dataset_json = pipeline.dataset_json()
    setup = {"command": command, "dataset": name, "cases": {"train": dataset_json["numTraining"],
                                        "test": len(os.listdir(os.path.join(pipeline.raw_folder, "labelsTs")))},
             "shape": dataset_json.get("generator", {}).get("shape"), "folds": folds, "trainers": trainers,
             "labels": {str(v): k for k, v in dataset_json["labels"].items() if isinstance(v, int) and v},
             "synthetic": dataset_json.get("generator"), "elapsed_seconds": time.time() - started,
             "configuration": configuration, "device": device, "device_name": _device_name(device)}
    written = write_benchmark_report(ws.root, runs, trainers, setup, timing, reference, other_runs)
    say(f"done: {written['report']}")
    return written


def _other_scored_runs(pipeline, runs: list[dict], say) -> list[dict]:
    """The records of every run scored in this workspace before (another trainer or fold: an earlier benchmark or
    the demo) that is not one of ``runs``: results.json and runs.csv keep them, so nothing finished is lost."""
    mine = {(r["trainer"], r["fold"]) for r in runs}
    before = [(t, f) for t, f in pipeline.scored_runs() if (t, f) not in mine]
    if before:
        say(f"{len(before)} other run{'s' if len(before) > 1 else ''} scored in this workspace before (other trainers "
            f"or folds): kept in results.json and runs.csv")
    others = []
    for trainer, fold in before:
        try:
            others.append(pipeline.run_record(trainer, fold))
        except (PruningError, OSError, KeyError, ValueError, RuntimeError) as e:
            say(f"left out {trainer} fold {fold}, scored before but unreadable now: {str(e).splitlines()[0]}")
    return others


def _time_first_fold(pipeline, trainers: list[str], fold: str, say, backend: str | None = None) -> dict:
    """The predictor's median time per test case for every trainer's first fold (interleaved, same settings;
    ``backend``: every network on it, else as nnUNetv2_predict runs each)."""
    from nnunet_pruning.app.timing import TimingSettings, case_files, time_models

    settings = TimingSettings(repeats=3, warmup=1, threads=2, backend=backend, device=pipeline.device)
    cases = case_files(os.path.join(pipeline.raw_folder, "imagesTs"), pipeline.dataset_json())
    say(f"timing nnU-Net's predictor for fold {fold} of every trainer on {len(cases)} test cases")
    with pipeline.ws.exported():  # the predictor looks trainers up in-process
        return time_models([(t, pipeline.model_folder(t), [fold], "checkpoint_final.pth") for t in trainers], cases,
                           settings, progress=lambda line: None)


def _device_name(device: str) -> str:
    """The processor or card behind ``device`` (the report names it beside every time)."""
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name(0)
    if device == "mps":
        return "Apple GPU (MPS)"
    from nnunet_pruning.core.clock import cpu_model

    return cpu_model()

