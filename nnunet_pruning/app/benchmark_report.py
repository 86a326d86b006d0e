"""What ``benchmark`` writes: report.md (the tables, the workspace's other runs), runs.csv, results.json, dice.png
and dice_per_class.png."""

from __future__ import annotations

import os
import statistics

from nnunet_pruning.app.report import load_line
from nnunet_pruning.app.run_statistics import difference_text, summarise_runs
from nnunet_pruning.core.files import atomic_write_text, write_json

__all__ = ["write_benchmark_report", "plot_dice_runs"]


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


def _device_text(setup: dict) -> str:
    """How the report names the device every command ran on: CPU or GPU, and the model where it is known."""
    device = setup.get("device", "cpu")
    kind = "CPU" if device == "cpu" else "GPU"
    return f"{kind} ({setup['device_name']})" if setup.get("device_name") else kind


def _per_class_table(rows: list[dict], labels: dict[str, str], key: str, against: str) -> list[str]:
    """Markdown lines: per trainer and class, the paired difference ``row[key]`` (mean and 95% CI)."""
    lines = [f"Per class: the trainer's test Dice minus {against}, fold by fold; mean and 95% t interval over the "
             "folds:", "", "| trainer |" + "".join(f" {labels[c]} |" for c in labels), "|---|" + "---|" * len(labels)]
    for row in rows:
        lines.append(f"| `{row['trainer']}` |" + "".join(f" {difference_text(row[key].get(c), '-')} |" for c in labels))
    return lines + [""]


def _per_fold_table(runs: list[dict], trainers: list[str], folds: list[str]) -> list[str]:
    """Markdown lines: each fold's test Dice per trainer, the pairs behind the differences ("-": no run)."""
    dice = {(r["trainer"], r["fold"]): r["test_dice"] for r in runs}
    lines = ["Test Dice per fold (the pairs behind the paired differences):", "",
             "| fold |" + "".join(f" {t.replace('nnUNetTrainer', '')} |" for t in trainers),
             "|---|" + "---|" * len(trainers)]
    for fold in folds:
        lines.append(f"| {fold} |" + "".join(f" {dice[t, fold]:.3f} |" if (t, fold) in dice else " - |"
                                               for t in trainers))
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
        diff_text = difference_text(row["paired_difference"], "baseline")
        if reference:
            diff_text += " | " + difference_text(row["paired_difference_to_reference"],
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
    lines += _per_fold_table(runs, trainers, setup["folds"])
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
