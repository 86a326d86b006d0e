"""``pruning_progress.png``, written by the pruning trainers next to nnU-Net's own ``progress.png``."""

from __future__ import annotations

__all__ = ["plot_pruning_progress"]


def plot_pruning_progress(log: list[dict], path: str, num_epochs: int | None = None) -> None:
    """Params and GFLOPs (as % of the start) per pruning step, beside the EMA pseudo-Dice at that step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    right.set_xlabel("epoch")
    right.set_ylabel("EMA pseudo-Dice (validation)")
    right.set_title("segmentation quality at each pruning step")
    right.grid(alpha=0.3)
    if num_epochs:
        for axis in (left, right):
            axis.set_xlim(-1, num_epochs)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
