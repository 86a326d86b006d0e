"""The files ``compare`` writes: report.md, results.csv, results.json and the PNG plots."""

from __future__ import annotations

import csv
import io
import os

from nnunet_pruning.app.machine import BUSY_CORES, BUSY_PEAK_CORES
from nnunet_pruning.core.files import atomic_write_text, write_json
from nnunet_pruning.core.measure import GFLOPS_UNIT

__all__ = ["compiled_table", "load_line", "ratios", "times_fewer", "markdown_table", "write_outputs"]

PLOTS = {"dice_vs_params": "dice_vs_params.png", "dice_vs_gflops": "dice_vs_gflops.png", "widths": "widths.png",
         "trajectories": "pruning_trajectories.png"}


def ratios(models: list[dict]) -> list[dict]:
    """Each model against the first (the baseline): how many times fewer params / GFLOPs, how many times
    faster (median per-case time), and the Dice difference."""
    base = models[0]["summary"]
    base_time = (models[0].get("inference") or {}).get("median")
    out = []
    for m in models:
        s = m["summary"]
        r = {"params_ratio": base["params"] / s["params"], "gflops_ratio": base["gflops"] / s["gflops"],
             "checkpoint_ratio": base["checkpoint_bytes"] / s["checkpoint_bytes"],
             "dice_delta": s["dice"] - base["dice"]}
        timing = (m.get("inference") or {}).get("median")
        if base_time and timing:
            r["speedup_total"] = base_time["total"] / timing["total"]
            r["speedup_network"] = base_time["network"] / timing["network"]
        out.append(r)
    return out


def times_fewer(ratio: float, digits: int = 1) -> str:
    """``2.0x fewer`` for a baseline/model ratio of 2, ``2.0x more`` for 0.5 (never "0.5x fewer")."""
    if ratio >= 1:
        return f"{ratio:.{digits}f}x fewer"
    return f"{1 / ratio:.{digits}f}x more"


def _dice_per_class(summary: dict, label_names: dict) -> str:
    return ", ".join(f"{label_names.get(k, k)} {v:.3f}" for k, v in summary["dice_per_class"].items())


def markdown_table(models: list[dict], label_names: dict) -> str:
    timed = all(m.get("inference") for m in models)
    header = ["model", "folds", "val Dice", "Dice per class", "params", "params vs base", "GFLOPs",
              "GFLOPs vs base", "checkpoint MB"]
    if timed:
        header += ["s / case", "speedup", "network s / case", "network speedup"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, (m, r) in enumerate(zip(models, ratios(models))):
        s = m["summary"]
        lo, hi = s["params_range"]
        params = f"{lo:,}" if lo == hi else f"{s['params']:,.0f} ({lo:,}-{hi:,})"
        missed = " (**pruning target NOT reached**)" if s.get("target_reached") is False else ""
        row = [m["label"] + (" (baseline)" if i == 0 else "") + missed, " ".join(s["folds"]), f"{s['dice']:.3f}",
               _dice_per_class(s, label_names), params, "1.0x" if i == 0 else times_fewer(r['params_ratio']),
               f"{s['gflops']:.2f}", "1.0x" if i == 0 else times_fewer(r['gflops_ratio'], 2),
               f"{s['checkpoint_bytes'] / 1e6:.2f}"]
        if timed:
            t = m["inference"]["median"]
            row += [f"{t['total']:.3f}", f"{r['speedup_total']:.2f}x", f"{t['network']:.3f}",
                    f"{r['speedup_network']:.2f}x"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _csv(models: list[dict]) -> str:
    buffer = io.StringIO()
    classes = list(models[0]["summary"]["dice_per_class"])
    fields = ["model", "trainer", "plans", "configuration", "dataset", "fold", "architecture", "val_dice"] + \
        [f"val_dice_class_{c}" for c in classes] + \
        ["params", "gflops", "checkpoint_bytes", "pruned", "target_reached", "params_ratio", "gflops_ratio",
         "median_s_per_case",
         "median_network_s_per_case", "speedup_total", "speedup_network"]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for m, r in zip(models, ratios(models)):
        timing = (m.get("inference") or {}).get("median") or {}
        for fold, f in m["folds"].items():
            row = {"model": m["label"], "trainer": m["trainer"], "plans": m["plans"],
                   "configuration": m["configuration"], "dataset": m["dataset"], "fold": fold,
                   "architecture": f["architecture"], "val_dice": f["dice"], "params": f["params"],
                   "gflops": f["gflops"], "checkpoint_bytes": f["checkpoint_bytes"],
                   "pruned": bool(f["pruning_log"]),
                   "target_reached": f["pruning_log"].get("target_reached", "") if f["pruning_log"] else "",
                   "params_ratio": r["params_ratio"],
                   "gflops_ratio": r["gflops_ratio"], "median_s_per_case": timing.get("total", ""),
                   "median_network_s_per_case": timing.get("network", ""),
                   "speedup_total": r.get("speedup_total", ""), "speedup_network": r.get("speedup_network", "")}
            row.update({f"val_dice_class_{c}": f["dice_per_class"][c] for c in classes})
            writer.writerow(row)
    return buffer.getvalue()


def load_line(timing: dict) -> str | None:
    """The markdown line on other processes' CPU use while a timing ran (``None`` where it was not measured)."""
    other, peak = timing.get("other_cpu_cores"), timing.get("other_cpu_cores_peak")
    if other is None:
        return None
    busy = other > BUSY_CORES or (peak or 0.0) > BUSY_PEAK_CORES
    return (f"- other processes kept {other:.2f} CPU cores busy on average while timing"
            + (f", {peak:.2f} in the busiest second" if peak is not None else "")
            + (" (**suspect: rerun on an idle machine**)." if busy else " (idle enough)."))


def compiled_table(models: list[dict], timing: dict) -> str:
    """Markdown: every model's predictor time eager and compiled (``compare --time --compile both``)."""
    base = models[0]["label"]
    eager, compiled = timing["models"], timing["compiled"]
    lines = ["Eager and compiled (`torch.compile`, as `nnUNet_compile=1 nnUNetv2_predict`), same runs, interleaved:",
             "", "| model | s / case eager | speedup eager | s / case compiled | speedup compiled | compiled vs eager "
             "| first run with compile s |", "|---|---|---|---|---|---|---|"]
    for m in models:
        label = m["label"]
        e, c = eager[label]["median"]["total"], compiled[label]["median"]["total"]
        first = (timing.get("first_run_with_compile_s") or {}).get(label + " [compiled]")
        lines.append(f"| {label} | {e:.3f} | {eager[base]['median']['total'] / e:.2f}x | {c:.3f} | "
                     f"{compiled[base]['median']['total'] / c:.2f}x | {e / c:.2f}x | "
                     f"{'' if first is None else f'{first:.1f}'} |")
    return "\n".join(lines)


def write_outputs(models: list[dict], timing: dict | None, output: str, label_names: dict, command: str,
                  notes: list[str] | None = None, title: str = "nnunet_pruning comparison",
                  preamble: str = "") -> dict:
    """Write everything into ``output``; returns ``{kind: path}`` of the files written.

    ``preamble`` (markdown) goes between the title and the comparison (the demo puts its test Dice there).
    """
    from nnunet_pruning.app.plots import plot_dice_vs_cost, plot_trajectories, plot_widths

    os.makedirs(output, exist_ok=True)
    written = {}
    for cost in ("params", "gflops"):
        path = os.path.join(output, PLOTS[f"dice_vs_{cost}"])
        plot_dice_vs_cost(models, cost, path)
        written[f"dice_vs_{cost}"] = path
    plot_widths(models, os.path.join(output, PLOTS["widths"]))
    written["widths"] = os.path.join(output, PLOTS["widths"])
    if plot_trajectories(models, os.path.join(output, PLOTS["trajectories"])):
        written["trajectories"] = os.path.join(output, PLOTS["trajectories"])

    base = models[0]
    lines = [f"# {title}", ""] + ([preamble, ""] if preamble else []) + [
             "## Validation Dice, size and inference time\n" if preamble else "", f"Command: `{command}`", "",
             f"Dataset {base['dataset']}, configuration {base['configuration']}, patch "
             f"{'x'.join(map(str, base['summary']['patch_size']))}. Baseline: **{base['label']}** (the first model).",
             "", markdown_table(models, label_names), "",
             "- val Dice: nnU-Net's `fold_X/validation/summary.json` (foreground mean), averaged over the folds.",
             f"- params: `model.parameters()`; GFLOPs: {GFLOPS_UNIT}, at the patch size. Averaged over folds "
             "when pruned folds differ (range in brackets).",
             "- checkpoint MB: size of the checkpoint file on disk (weights + optimizer state + logs)."]
    if timing:
        s = timing["settings"]
        lines += [f"- s / case: median over {len(timing['cases'])} cases of the per-case median of {s['repeats']} "
                  f"runs (after {s['warmup']} warm-up run(s) per model, runs interleaved) through nnU-Net's predictor: "
                  f"preprocess + sliding-window network + export; network s / case is the sliding window alone. "
                  f"Device {s['device']}, {s['threads']} threads, tile step {s['tile_step_size']}, mirroring (TTA) "
                  f"{'on' if s['use_mirroring'] else 'off'}, every selected fold "
                  f"predicted as an ensemble (as `nnUNetv2_predict -f ...`)."]
        backends = {label: t.get("backend", "torch") for label, t in timing["models"].items()}
        if set(backends.values()) != {"torch"}:
            lines += ["- what ran each network (eager, on the CPU): " + ", ".join(
                f"{label}: {backend}" for label, backend in backends.items()) + "; this package's networks run as "
                "`nnUNetv2_predict` runs them (`nnUNet_pruning_backend`, default `auto`: PyTorch or OpenVINO, "
                "whichever ran the first tiles faster, docs/getting-started.md), stock nnU-Net's on PyTorch."]
        if timing.get("compiled"):
            lines += ["", compiled_table(models, timing), ""]
        elif s.get("compile") == "compiled":
            lines += ["- every network was compiled with `torch.compile` (as `nnUNet_compile=1 nnUNetv2_predict`)."]
        lines += [line for line in [load_line(timing)] if line]
    else:
        lines += ["- inference time: not measured (add `--time` to time nnU-Net's predictor side by side)."]
    lines += [f"- {n}" for n in (notes or [])]
    lines += ["", "## Plots", ""]
    titles = {"dice_vs_params": "Dice vs parameters", "dice_vs_gflops": "Dice vs GFLOPs",
              "widths": "Channel widths per stage", "trajectories": "Pruning trajectories"}
    for kind, path in written.items():
        lines += [f"### {titles[kind]}", "", f"![{titles[kind]}]({os.path.basename(path)})", ""]
    if "trajectories" not in written:
        lines += ["No model has a `pruning_log.json`, so there is no pruning trajectory to plot.", ""]
    report = os.path.join(output, "report.md")
    atomic_write_text("\n".join(lines), report)
    written["report"] = report
    atomic_write_text(_csv(models), os.path.join(output, "results.csv"))
    written["csv"] = os.path.join(output, "results.csv")
    payload = {"command": command, "title": title, "preamble": preamble, "gflops_unit": GFLOPS_UNIT,
               "baseline": base["label"], "models": models,
               "ratios_to_baseline": dict(zip([m["label"] for m in models], ratios(models))), "inference": timing}
    write_json(payload, os.path.join(output, "results.json"))
    written["json"] = os.path.join(output, "results.json")
    return written
