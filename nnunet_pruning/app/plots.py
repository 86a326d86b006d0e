"""The comparison plots of ``compare`` and the demo (Dice vs cost, widths, pruning trajectories)."""

from __future__ import annotations

from matplotlib.ticker import MaxNLocator

from nnunet_pruning.trainers.progress_plot import pyplot, save_figure, set_score_limits

__all__ = ["plot_dice_vs_cost", "plot_widths", "plot_trajectories"]


# -- comparison plots (nnunet-pruning compare) ---------------------------------------------------------------
def plot_dice_vs_cost(models: list[dict], cost: str, path: str) -> None:
    """Validation Dice against ``params`` or ``gflops``: one marker per fold, a larger one per model mean;
    the first model is the baseline (star, dashed line at its Dice)."""
    plt = pyplot()
    unit = {"params": "parameters (log scale)", "gflops": "GFLOPs per forward pass at the patch size"}[cost]
    with plt.style.context("default"):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for i, m in enumerate(models):
            color = f"C{i % 10}"
            folds = list(m["folds"].values())
            ax.scatter([f[cost] for f in folds], [f["dice"] for f in folds], color=color, s=18, alpha=0.5)
            s = m["summary"]
            ax.scatter([s[cost]], [s["dice"]], color=color, s=160 if i == 0 else 70, marker="*" if i == 0 else "o",
                       edgecolor="black", zorder=3, clip_on=False, label=m["label"] + (" (baseline)" if i == 0 else ""))
            if i == 0:
                ax.axhline(s["dice"], color=color, linestyle="--", linewidth=1)
        if cost == "params":
            ax.set_xscale("log")
        ax.set_xlabel(unit)
        ax.set_ylabel("validation Dice (mean over foreground classes)")
        ax.set_title(f"Dice vs {'parameters' if cost == 'params' else 'GFLOPs'} (small dots: single folds)")
        ax.grid(alpha=0.3)
        ax.margins(x=0.12)  # room around the outermost markers (the baseline is usually the largest model)
        set_score_limits(ax, [f["dice"] for m in models for f in m["folds"].values()])
        ax.legend(fontsize=8, loc="best")
        save_figure(fig, path)


def plot_widths(models: list[dict], path: str) -> None:
    """Output channels of every conv in forward order (encoder then decoder), one line per model
    (its first fold), with the stage names on the x axis."""
    plt = pyplot()
    with plt.style.context("default"):
        fig, ax = plt.subplots(figsize=(max(8, 0.22 * _conv_count(models[0]) + 3), 4.5))
        ticks = {}
        for i, m in enumerate(models):
            fold, first = next(iter(m["folds"].items()))
            xs, ys, x = [], [], 0
            for stage, widths in first["widths"].items():
                if stage.startswith("decoder.seg_layers"):
                    continue
                ticks.setdefault(x, stage.replace("encoder.", "enc.").replace("decoder.", "dec."))
                for w in widths:
                    xs.append(x)
                    ys.append(w)
                    x += 1
            ax.step(xs, ys, where="mid", marker=".", color=f"C{i % 10}", label=f"{m['label']} (fold {fold})")
        ax.set_yscale("log", base=2)
        ax.set_xticks(list(ticks), list(ticks.values()), rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("output channels of the conv (log2)")
        ax.set_title("channel widths per stage")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        save_figure(fig, path)


def _conv_count(model: dict) -> int:
    first = next(iter(model["folds"].values()))
    return sum(len(w) for w in first["widths"].values())


def plot_trajectories(models: list[dict], path: str) -> bool:
    """Params and GFLOPs (% of the unpruned network) per pruning step of every pruned fold, the measured forward
    time where a run pruned to one (latency target: as its trainer measured it), and the EMA pseudo-Dice at each
    step. Returns False (and writes nothing) when no model was pruned."""
    runs = [(i, m["label"], fold, f["pruning_log"]) for i, m in enumerate(models) for fold, f in m["folds"].items()
            if f.get("pruning_log")]
    if not runs:
        return False
    keys = [("params_fraction", "parameters"), ("gflops_fraction", "GFLOPs at the patch size")]
    timed = {(log.get("latency") or {}).get("device") for _, _, _, log in runs
             if any("latency_fraction" in s for s in log["steps"])}
    if timed:
        keys.append(("latency_fraction", f"measured forward time ({', '.join(sorted(d or '?' for d in timed))})"))
    plt = pyplot()
    with plt.style.context("default"):
        fig, axes = plt.subplots(1, len(keys) + 1, figsize=(5 * (len(keys) + 1), 4.2))
        for n, (i, label, fold, log) in enumerate(runs):  # colours as in the other plots (model index)
            style = dict(color=f"C{i % 10}", linestyle=("-", "--", ":", "-.")[n % 4], label=f"{label} fold {fold}")
            steps = log["steps"]
            epochs = [-1] + [s["epoch"] for s in steps]
            for ax, (key, _) in zip(axes, keys):
                if all(key in s for s in steps):
                    ax.step(epochs, [100.0] + [100 * s[key] for s in steps], where="post", marker="o", **style)
            dice = [(s["epoch"], s.get("ema_pseudo_dice")) for s in steps if s.get("ema_pseudo_dice") is not None]
            axes[-1].plot([d[0] for d in dice], [d[1] for d in dice], marker="o", **style)
        for ax, title in zip(axes, [t for _, t in keys] + ["EMA pseudo-Dice at each step"]):
            ax.set_xlabel("epoch (-1: before pruning)")
            ax.set_title(title)
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        for ax in axes[:-1]:
            ax.set_ylim(0, 105)
            ax.set_ylabel("% of the unpruned network")
        set_score_limits(axes[-1], [s.get("ema_pseudo_dice") for _, _, _, log in runs for s in log["steps"]])
        axes[0].legend(fontsize=8)
        save_figure(fig, path)
    return True
