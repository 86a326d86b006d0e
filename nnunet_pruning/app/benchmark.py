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

import math
import os
import statistics
import time

from nnunet_pruning.app.demo import THESIS_TRAINERS
from nnunet_pruning.app.report import load_line
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.files import atomic_write_text, write_json

__all__ = ["DEFAULT_TRAINERS", "BENCHMARK_DATASET_ID", "paired_difference", "summarise_runs",
           "run_benchmark", "write_benchmark_report", "plot_dice_runs"]

BENCHMARK_DATASET_ID = 901
#: stock and the thesis' three methods on the demo budget, stock first
DEFAULT_TRAINERS = [name for _, name in THESIS_TRAINERS]
#: nnU-Net log lines worth showing while a model trains


def _t_quantile(n: int) -> float:
    """The two-sided 95% quantile of Student's t with ``n - 1`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1))


def paired_difference(values: dict[str, float], baseline: dict[str, float]) -> dict:
    """Mean of ``values[fold] - baseline[fold]`` over the folds both have, its sd and 95% CI (t, n - 1 df).

    With one common fold the interval is not defined (``None``).
    """
    folds = [f for f in values if f in baseline]
    diffs = [values[f] - baseline[f] for f in folds]
    if not diffs:
        raise PruningError("no fold in common with the baseline; run the same folds for every trainer")
    mean = sum(diffs) / len(diffs)
    if len(diffs) < 2:
        return {"folds": folds, "mean": mean, "sd": None, "ci95": None, "n": 1}
    sd = statistics.stdev(diffs)
    half = _t_quantile(len(diffs)) * sd / math.sqrt(len(diffs))
    return {"folds": folds, "mean": mean, "sd": sd, "ci95": [mean - half, mean + half], "n": len(diffs)}


def _class_dice(folds: dict[str, dict], label: str) -> dict[str, float]:
    """``{fold: test Dice of class label}`` of the runs that have it."""
    return {f: r["test_dice_per_class"][label] for f, r in folds.items() if label in r.get("test_dice_per_class", {})}


def summarise_runs(runs: list[dict], trainers: list[str], reference: str | None = None) -> list[dict]:
    """Per trainer (in order): Dice mean and sd over folds (overall and per class), the paired difference to the
    first trainer and, with ``reference``, to that trainer too (e.g. STAMP's default against its ablations),
    sizes, time."""
    by_trainer = {t: {r["fold"]: r for r in runs if r["trainer"] == t} for t in trainers}
    baseline = {f: r["test_dice"] for f, r in by_trainer[trainers[0]].items()}
    if reference is not None and reference not in by_trainer:
        raise PruningError(f"the reference trainer {reference} is not one of the benchmarked trainers")
    second = None if reference is None else {f: r["test_dice"] for f, r in by_trainer[reference].items()}
    theirs = {}  # {(baseline or reference, class): {fold: Dice}}, read once for all trainers

    def per_class_difference(labels, trainer: str, against: str) -> dict:
        """Per class of ``labels`` that ``against`` has: ``trainer``'s Dice minus ``against``'s, fold by fold."""
        for c in labels:
            if (against, c) not in theirs:
                theirs[against, c] = _class_dice(by_trainer[against], c)
        return {c: paired_difference(_class_dice(by_trainer[trainer], c), theirs[against, c])
                for c in labels if theirs[against, c]}

    rows = []
    for trainer in trainers:
        folds = by_trainer[trainer]
        dice = [r["test_dice"] for r in folds.values()]
        row = {"trainer": trainer, "folds": sorted(folds), "n": len(dice), "dice_mean": sum(dice) / len(dice),
               "dice_sd": statistics.stdev(dice) if len(dice) > 1 else None,
               "params_mean": sum(r["params"] for r in folds.values()) / len(dice),
               "gflops_mean": sum(r["gflops"] for r in folds.values()) / len(dice),
               "train_seconds": sum(r.get("train_seconds") or 0 for r in folds.values()),
               "targets_missed": {f: r.get("pruning", "") for f, r in folds.items() if r.get("target_reached") is False}}
        row["paired_difference"] = None if trainer == trainers[0] else paired_difference(
            {f: r["test_dice"] for f, r in folds.items()}, baseline)
        if second is not None:
            row["paired_difference_to_reference"] = None if trainer in (trainers[0], reference) else \
                paired_difference({f: r["test_dice"] for f, r in folds.items()}, second)
        classes = sorted({c for r in folds.values() for c in r.get("test_dice_per_class", {})}, key=str)
        row["dice_per_class_mean"] = {c: sum(r["test_dice_per_class"][c] for r in folds.values()) / len(dice)
                                      for c in classes if all(c in r.get("test_dice_per_class", {})
                                                              for r in folds.values())}
        row["paired_difference_per_class"] = None if trainer == trainers[0] else per_class_difference(
            row["dice_per_class_mean"], trainer, trainers[0])
        if second is not None:
            row["paired_difference_per_class_to_reference"] = None if trainer in (trainers[0], reference) else \
                per_class_difference(row["dice_per_class_mean"], trainer, reference)
        rows.append(row)
    return rows


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
    runs = []
    for fold in folds:  # fold by fold: a stopped benchmark already has complete pairs
        for trainer in trainers:
            runs.append(pipeline.test_run(trainer, fold, progress=TRAINING_PROGRESS))
            say(f"{trainer} fold {fold}: test Dice {runs[-1]['test_dice']:.3f}")
    other_runs = _other_scored_runs(pipeline, runs, say)
    timing = None
    if time_inference:
        timing = _time_first_fold(pipeline, trainers, folds[0], say, backend)
    dataset_json = pipeline.dataset_json()
    setup = {"command": command, "dataset": name, "cases": {"train": dataset_json["numTraining"],
                                        "test": len(os.listdir(os.path.join(pipeline.raw_folder, "labelsTs")))},
             "shape": dataset_json.get("generator", {}).get("shape"), "folds": folds, "trainers": trainers,
             "labels": {str(v): k for k, v in dataset_json["labels"].items() if isinstance(v, int) and v},
             "synthetic": dataset_json.get("generator"), "elapsed_seconds": time.time() - started, "configuration": configuration, "device": device,
             "device_name": _device_name(device)}
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


def plot_dice_runs(rows: list[dict], runs: list[dict], path: str,
                   title: str = "test Dice per run (dots) and mean +- sd over folds") -> None:
    """Each trainer's test Dice per run (dots) beside its mean +- sd; ``rows``: trainer, dice_mean, dice_sd;
    ``runs``: trainer, test_dice."""
    from nnunet_pruning.trainers.progress_plot import pyplot, save_figure

    plt = pyplot()
    with plt.style.context("default"):
        fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(rows)), 4.5))
        for i, row in enumerate(rows):
            dice = [r["test_dice"] for r in runs if r["trainer"] == row["trainer"]]
            ax.scatter([i] * len(dice), dice, color=f"C{i % 10}", alpha=0.5, s=20, zorder=2)
            ax.errorbar([i + 0.15], [row["dice_mean"]], yerr=[row["dice_sd"] or 0], fmt="o", color=f"C{i % 10}",
                        capsize=6, markersize=8, zorder=3)
        ax.set_xticks(range(len(rows)), [r["trainer"].replace("nnUNetTrainer", "") for r in rows], rotation=20,
                      ha="right")
        ax.set_ylabel("test Dice (mean over foreground classes)")
        ax.set_title(title)
        ax.margins(x=0.15)
        ax.grid(alpha=0.3)
        save_figure(fig, path)


def _plot_per_class(rows: list[dict], labels: dict[str, str], runs: list[dict], baseline: str, path: str) -> None:
    """Per class, each trainer's per-fold differences to the baseline (dots) and their mean with its 95% CI."""
    from nnunet_pruning.trainers.progress_plot import pyplot, save_figure

    plt = pyplot()
    base = {r["fold"]: r.get("test_dice_per_class", {}) for r in runs if r["trainer"] == baseline}
    width = 0.8 / len(rows)
    with plt.style.context("default"):
        fig, ax = plt.subplots(figsize=(max(6, 1.5 * len(labels)), 4.5))
        for i, row in enumerate(rows):
            mine = {r["fold"]: r.get("test_dice_per_class", {}) for r in runs if r["trainer"] == row["trainer"]}
            for j, c in enumerate(labels):
                diff = row["paired_difference_per_class"].get(c)
                if diff is None:
                    continue
                x = j - 0.4 + width * (i + 0.5)
                ax.scatter([x - width / 4] * len(diff["folds"]), [mine[f][c] - base[f][c] for f in diff["folds"]],
                           color=f"C{(i + 1) % 10}", alpha=0.5, s=20, zorder=2)
                ci = diff["ci95"]
                yerr = [[diff["mean"] - ci[0]], [ci[1] - diff["mean"]]] if ci else None
                ax.errorbar([x + width / 4], [diff["mean"]], yerr=yerr, fmt="o", color=f"C{(i + 1) % 10}", capsize=5,
                            markersize=7, zorder=3, label=row["trainer"].replace("nnUNetTrainer", "") if j == 0 else None)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(labels)), list(labels.values()))
        ax.set_ylabel("test Dice minus the baseline's (same fold)")
        ax.set_title(f"per class, against {baseline.replace('nnUNetTrainer', '')}: runs (dots), mean and 95% CI",
                     fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        save_figure(fig, path)


def _device_name(device: str) -> str:
    """The processor or card behind ``device`` (the report names it beside every time)."""
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name(0)
    if device == "mps":
        return "Apple GPU (MPS)"
    from nnunet_pruning.core.clock import cpu_model

    return cpu_model()


def _device_text(setup: dict) -> str:
    """How the report names the device every command ran on: CPU or GPU, and the model where it is known."""
    device = setup.get("device", "cpu")
    kind = "CPU" if device == "cpu" else "GPU"
    return f"{kind} ({setup['device_name']})" if setup.get("device_name") else kind


def _diff_text(diff: dict | None, none: str) -> str:
    if diff is None:
        return none
    if diff["ci95"] is None:
        return f"{diff['mean']:+.3f} (one run: no CI)"
    return f"{diff['mean']:+.3f} ({diff['ci95'][0]:+.3f} to {diff['ci95'][1]:+.3f})"


def _per_class_table(rows: list[dict], labels: dict[str, str], key: str, against: str) -> list[str]:
    """Markdown lines: per trainer and class, the paired difference ``row[key]`` (mean and 95% CI)."""
    lines = [f"Per class: the trainer's test Dice minus {against}, fold by fold; mean and 95% t interval over the "
             "folds:", "", "| trainer |" + "".join(f" {labels[c]} |" for c in labels), "|---|" + "---|" * len(labels)]
    for row in rows:
        lines.append(f"| `{row['trainer']}` |" + "".join(f" {_diff_text(row[key].get(c), '-')} |" for c in labels))
    return lines + [""]


def _other_runs_text(other_runs: list[dict]) -> list[str]:
    """Markdown lines naming the workspace's other scored runs per trainer: folds and test Dice."""
    if not other_runs:
        return []
    lines = ["Other runs scored in this workspace before (other trainers or folds; not in the tables above, kept in "
             "results.json `other_runs` and runs.csv; `nnunet-pruning pool-dice WORKSPACE --trainers ...` "
             "pairs them too):", ""]
    for trainer in dict.fromkeys(r["trainer"] for r in other_runs):
        mine = sorted((r for r in other_runs if r["trainer"] == trainer), key=lambda r: r["fold"])
        dice = [r["test_dice"] for r in mine]
        sd = f" +- {statistics.stdev(dice):.3f}" if len(dice) > 1 else ""
        lines.append(f"- `{trainer}` fold{'s' if len(mine) > 1 else ''} {', '.join(r['fold'] for r in mine)}: test "
                     f"Dice {sum(dice) / len(dice):.3f}{sd}")
    return lines + [""]


def write_benchmark_report(output: str, runs: list[dict], trainers: list[str], setup: dict,
                           timing: dict | None = None, reference: str | None = None,
                           other_runs: list[dict] | None = None) -> dict:
    """report.md, runs.csv, results.json and dice.png of a benchmark; returns ``{kind: path}``.

    ``runs``: this invocation's (the report's tables); ``other_runs``: every other run scored in the workspace,
    listed below the tables and kept in results.json (``other_runs``) and runs.csv."""
    import csv
    import io

    other_runs = other_runs or []

    rows = summarise_runs(runs, trainers, reference)
    classes = list(rows[0]["dice_per_class_mean"])
    ref_head = f" paired diff to `{reference}` (95% CI) |" if reference else ""
    names = setup.get("labels") or {}
    class_head = "".join(f" Dice {names[c]} ({c}) |" if c in names else f" Dice class {c} |" for c in classes)
    synthetic = setup.get("synthetic")
    task = f", synthetic task {synthetic.get('task', 'shapes')}, seed {synthetic.get('seed')}" if synthetic else ""
    models = (timing or {}).get("models", {})
    base_time = models.get(trainers[0], {}).get("median", {}).get("total")
    lines = ["# nnunet_pruning benchmark", "",
             f"Dataset {setup['dataset']} ({setup['cases']['train']} training / {setup['cases']['test']} test cases"
             f"{', shape ' + 'x'.join(map(str, setup['shape'])) if setup.get('shape') else ''}{task}), "
             f"{setup.get('configuration', '3d_fullres')}, {_device_text(setup)}. "
             f"Every trainer ran folds {', '.join(setup['folds'])} (a run per fold: another training split, another "
             f"pruning seed, nnU-Net's own randomness); test Dice from `nnUNetv2_predict` + "
             f"`nnUNetv2_evaluate_folder` on the held-out test cases. The baseline is `{trainers[0]}`.", "",
             f"Command: `{setup.get('command', 'nnunet-pruning benchmark')}`", "",
             "| trainer | runs | test Dice mean +- sd | paired diff to baseline (95% CI) |" + ref_head + class_head +
             " params | GFLOPs | s / case | training min (all runs) |",
             "|---|---|---|---|" + "---|" * (bool(reference) + len(classes)) + "---|---|---|---|"]
    reasons: list[str] = []  # why a run missed its target, one line per run under the table
    for row in rows:
        sd = f" +- {row['dice_sd']:.3f}" if row["dice_sd"] is not None else ""
        diff_text = _diff_text(row["paired_difference"], "baseline")
        if reference:
            diff_text += " | " + _diff_text(row["paired_difference_to_reference"],
                                            "reference" if row["trainer"] == reference else "-")
        for c in classes:
            value = row["dice_per_class_mean"].get(c)
            diff_text += " | " + ("-" if value is None else f"{value:.3f}")
        seconds = models.get(row["trainer"], {}).get("median", {}).get("total")
        time_text = "-" if seconds is None else f"{seconds:.3f}" + (
            f" ({base_time / seconds:.2f}x)" if base_time else "")
        folds_missed = list(row["targets_missed"])
        missed = (f" (**target missed in fold{'s' if len(folds_missed) > 1 else ''} {', '.join(folds_missed)}**)"
                  if folds_missed else "")
        reasons += [f"- `{row['trainer']}` fold {f}: {why}" for f, why in row["targets_missed"].items() if why]
        lines.append(f"| `{row['trainer']}`{missed} | {row['n']} | {row['dice_mean']:.3f}{sd} | {diff_text} | "
                     f"{row['params_mean']:,.0f} | {row['gflops_mean']:.2f} | {time_text} | "
                     f"{row['train_seconds'] / 60:.1f} |")
    if reasons:
        lines += ["", "Targets missed (the pruning log of each run):", "", *reasons]
    lines += ["", "- paired diff: per fold, the trainer's test Dice minus the baseline's on the same fold; mean and a "
              "95% t interval over the folds (n - 1 degrees of freedom). An interval that contains 0 does not "
              "separate the methods at this number of runs.",
              "- s / case: nnU-Net's predictor (preprocess + sliding window + export), median over the test cases "
              "of 3 interleaved runs after a warm-up, fold " + setup["folds"][0] + ", "
              + ("2 threads" if setup.get("device", "cpu") == "cpu" else _device_text(setup)) +
              ", no mirroring; "
              "the networks on " + ", ".join(sorted({m.get("backend", "torch") for m in models.values()})) + "."
              if timing else "- s / case: not measured (run without --no-time to measure).",
              *[line for line in [timing and load_line(timing)] if line],
              f"- cost: {setup['elapsed_seconds'] / 60:.1f} min for this invocation (finished runs are reused; "
              f"training took {sum(r['train_seconds'] for r in rows) / 60:.1f} min over all runs).", "",
              "![test Dice per run](dice.png)", ""]
    per_class = [row for row in rows if row["paired_difference_per_class"]]
    if per_class and len(classes) > 1:  # where a method loses: one class's Dice, fold by fold against the baseline
        labels = {c: f"{names[c]} ({c})" if c in names else f"class {c}" for c in classes}
        lines += _per_class_table(per_class, labels, "paired_difference_per_class", "the baseline's")
        lines += ["![per class, paired difference to the baseline](dice_per_class.png)", ""]
        _plot_per_class(per_class, labels, runs, trainers[0], os.path.join(output, "dice_per_class.png"))
        to_reference = [row for row in rows if row.get("paired_difference_per_class_to_reference")]
        if to_reference:
            lines += _per_class_table(to_reference, labels, "paired_difference_per_class_to_reference",
                                      f"the reference's (`{reference}`)")
    lines += _other_runs_text(other_runs)
    report = os.path.join(output, "report.md")
    atomic_write_text("\n".join(lines), report)
    buffer = io.StringIO()
    fields = ["trainer", "fold", "test_dice", "params", "gflops", "train_seconds", "target_reached", "in_report"]
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for run in runs:
        writer.writerow(dict(run, in_report=True))
    for run in other_runs:
        writer.writerow(dict(run, in_report=False))
    atomic_write_text(buffer.getvalue(), os.path.join(output, "runs.csv"))
    write_json({"setup": setup, "runs": runs, "summary": rows, "inference": timing, "other_runs": other_runs},
               os.path.join(output, "results.json"))
    plot_dice_runs(rows, runs, os.path.join(output, "dice.png"))
    return {"report": report, "csv": os.path.join(output, "runs.csv"), "json": os.path.join(output, "results.json"),
            "plot": os.path.join(output, "dice.png"),
            **({"plot_per_class": os.path.join(output, "dice_per_class.png")} if per_class and len(classes) > 1 else {})}
