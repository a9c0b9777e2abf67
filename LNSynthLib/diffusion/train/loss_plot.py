"""Training loss history: CSV (step, loss) and a PNG plot with a moving average, for the run folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from LNSynthLib.atomic import atomic_path, write_text_atomic


def write_loss_csv(history: Sequence[tuple[int, float]], path: str | Path) -> Path:
    lines = ["step,loss"] + [f"{int(s)},{float(v):.6g}" for s, v in history]
    return write_text_atomic(path, "\n".join(lines) + "\n", overwrite=True)


def read_loss_csv(path: str | Path) -> list[tuple[int, float]]:
    rows = Path(path).read_text(encoding="utf-8").strip().splitlines()[1:]
    return [(int(s), float(v)) for s, v in (row.split(",") for row in rows)]


def plot_loss(history: Sequence[tuple[int, float]], path: str | Path, title: str = "LN-DDPM training loss") -> Path:
    """Raw loss (light) and its moving average over ~2% of the run (dark)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    steps = np.array([s for s, _ in history], dtype=float)
    losses = np.array([v for _, v in history], dtype=float)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if len(losses):
        ax.plot(steps, losses, color="tab:blue", alpha=0.3, lw=0.8, label="loss")
        window = max(1, len(losses) // 50)
        if window > 1:
            smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
            ax.plot(steps[window - 1:], smooth, color="tab:blue", lw=1.6, label=f"mean of {window}")
        ax.legend(loc="upper right")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return Path(path)
