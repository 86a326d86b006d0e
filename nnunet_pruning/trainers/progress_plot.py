"""``pruning_progress.png``, written by the pruning trainers next to nnU-Net's own ``progress.png``."""

from __future__ import annotations

__all__ = ["plot_pruning_progress", "pyplot", "set_score_limits", "save_figure", "MIN_SCORE_SPAN"]

#: a Dice axis spans at least this much, so a change of 0.0004 does not fill the plot like a crash
MIN_SCORE_SPAN = 0.2


def set_score_limits(ax, values: list) -> None:
    """Y limits for a Dice-like score in [0, 1]: the data with a margin, at least :data:`MIN_SCORE_SPAN` tall."""
    values = [v for v in values if v is not None]
    if not values:
        return
    low, high = min(values), max(values)
    pad = max((MIN_SCORE_SPAN - (high - low)) / 2, 0.05 * (high - low))
    low, high = max(0.0, low - pad), min(1.0, high + pad)
    if high - low < MIN_SCORE_SPAN:  # pressed against 0 or 1: extend the other way
        low, high = (0.0, MIN_SCORE_SPAN) if low == 0.0 else (1.0 - MIN_SCORE_SPAN, 1.0)
    ax.set_ylim(low, high)


def plot_pruning_progress(log: list[dict], path: str, num_epochs: int | None = None) -> None:
    """Params and GFLOPs (as % of the start) per pruning step, beside the EMA pseudo-Dice at that step."""
    plt = pyplot()
    epochs = [-1] + [r["epoch"] for r in log]
    params = [100.0] + [100 * r["params_fraction"] for r in log]
    gflops = [100.0] + [100 * r["gflops_fraction"] for r in log]
    if num_epochs:  # hold the last size to the end of training
        epochs, params, gflops = epochs + [num_epochs - 1], params + params[-1:], gflops + gflops[-1:]
    with plt.style.context("default"):  # nnU-Net's logger switches seaborn's large-font style on globally
        _draw(plt, epochs, params, gflops, log, path, num_epochs)


def _draw(plt, epochs, params, gflops, log, path, num_epochs):
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.step(epochs, params, where="post", label="parameters", marker="o")
    left.step(epochs, gflops, where="post", label="GFLOPs (patch)", marker="s")
    left.set_xlabel("epoch")
    left.set_ylabel("% of the unpruned network")
    left.set_ylim(0, 105)
    left.set_title("network size during pruning")
    left.grid(alpha=0.3)
    left.legend()
    dice = [(r["epoch"], r.get("ema_pseudo_dice")) for r in log if r.get("ema_pseudo_dice") is not None]
    if dice:
        right.plot([d[0] for d in dice], [d[1] for d in dice], marker="o", color="tab:green")
    set_score_limits(right, [d[1] for d in dice])
    right.set_xlabel("epoch")
    right.set_ylabel("EMA pseudo-Dice (validation)")
    right.set_title("segmentation quality at each pruning step")
    right.grid(alpha=0.3)
    from matplotlib.ticker import MaxNLocator

    for axis in (left, right):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        if num_epochs:
            axis.set_xlim(-1.5, num_epochs - 0.5)
    save_figure(fig, path)


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend (no display needed), imported on first use: every plot of
    this package starts this way."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str) -> None:
    """Lay out, write (100 dpi) and close a figure: every plot of this package ends this way."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot().close(fig)
