"""PNG figures of a run: real vs synthetic mosaics with LN contours, training curves, segmentations."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from LNSynthLib.atomic import atomic_path
from LNSynthLib.volumes.geometry import Volume

WINDOW = (-120.0, 240.0)


def pyplot():  # noqa: ANN201 - matplotlib.pyplot, imported only when a figure is drawn
    """matplotlib.pyplot on the file-only Agg backend (no display on servers and in job processes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _slices(ct: Volume, ln: Volume) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], float]:
    """Axial and coronal slices through the LN centre (or the middle), and the coronal aspect ratio."""
    idx = np.argwhere(ln.array > 0)
    z, y, _ = (idx.mean(axis=0).round().astype(int) if len(idx) else np.array(ct.shape) // 2)
    axial = (ct.array[z], ln.array[z])
    coronal = (ct.array[:, y, :][::-1], ln.array[:, y, :][::-1])  # head up
    sx, _, sz = ct.geometry.spacing
    return axial, coronal, sz / sx


def _show(ax, image: np.ndarray, mask: np.ndarray, title: str, aspect: float = 1.0, color: str = "yellow") -> None:  # noqa: ANN001
    ax.imshow(image, cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], aspect=aspect, interpolation="nearest")
    if mask.any():
        ax.contour(mask > 0, levels=[0.5], colors=color, linewidths=0.8)
    ax.set_title(title, fontsize=7)
    ax.axis("off")


def mosaic(pairs: Sequence[tuple[str, Volume, Volume, Volume, Volume]], png: str | Path) -> Path:
    """One row per pair (name, real CT, real LN, synthetic CT, synthetic LN): axial and coronal views."""
    plt = pyplot()
    rows = max(1, len(pairs))
    fig, axes = plt.subplots(rows, 4, figsize=(8, 2.1 * rows), squeeze=False)
    for r, (name, rct, rln, sct, sln) in enumerate(pairs):
        (ra, rc, r_aspect), (sa, sc, s_aspect) = _slices(rct, rln), _slices(sct, sln)
        _show(axes[r, 0], *ra, f"{name}: real axial")
        _show(axes[r, 1], *rc, "real coronal", r_aspect)
        _show(axes[r, 2], *sa, "synthetic axial")
        _show(axes[r, 3], *sc, "synthetic coronal", s_aspect)
    fig.suptitle("Real (left) vs synthetic (right), LN contour in yellow", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, png)


def segmentation_mosaic(rows: Sequence[tuple[str, Volume, Volume, dict[str, Volume]]], png: str | Path) -> Path:
    """Per test case: the CT with ground truth (green) and each method's prediction (red), axial slice."""
    plt = pyplot()
    n_methods = max((len(r[3]) for r in rows), default=0)
    fig, axes = plt.subplots(max(1, len(rows)), 1 + n_methods, figsize=(2.2 * (1 + n_methods), 2.3 * len(rows)),
                             squeeze=False)
    for r, (name, ct, gt, preds) in enumerate(rows):
        (axial, _), _, _ = _slices(ct, gt)
        idx = np.argwhere(gt.array > 0)
        z = int(idx[:, 0].mean().round()) if len(idx) else ct.shape[0] // 2
        _show(axes[r, 0], axial, gt.array[z], f"{name}: ground truth", color="lime")
        for c, (method, pred) in enumerate(preds.items(), start=1):
            _show(axes[r, c], axial, gt.array[z], method, color="lime")
            if pred.array[z].any():
                axes[r, c].contour(pred.array[z] > 0, levels=[0.5], colors="red", linewidths=0.8)
    fig.tight_layout()
    return save_figure(fig, png)


def training_curves(ddpm_loss: Sequence[tuple[int, float]], nnunet: dict[str, Sequence[dict]],
                    png: str | Path) -> Path:
    """LN-DDPM loss per step (left) and nnU-Net train/val loss and pseudo Dice per epoch (right)."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    if ddpm_loss:
        steps, losses = zip(*ddpm_loss, strict=True)
        left.plot(steps, losses, lw=0.6, alpha=0.5, label="loss")
        if len(losses) >= 10:
            k = max(5, len(losses) // 20)
            smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
            left.plot(steps[k - 1:], smooth, lw=1.5, label=f"mean of {k}")
        left.legend(fontsize=7)
    else:
        left.text(0.5, 0.5, "no loss.csv", ha="center", transform=left.transAxes)
    left.set(title="LN-DDPM training loss", xlabel="step", ylabel="L1 loss")
    for i, (name, epochs) in enumerate(nnunet.items()):
        if not epochs:
            continue
        color = f"C{i}"
        x = [e["epoch"] for e in epochs]
        right.plot(x, [e["train_loss"] for e in epochs], color=color, marker="o", ms=3, label=f"{name} train")
        right.plot(x, [e["val_loss"] for e in epochs], color=color, ls="--", marker="o", ms=3, label=f"{name} val")
    right.set(title="nnU-Net loss per epoch (Dice+CE)", xlabel="epoch")
    from matplotlib.ticker import MaxNLocator

    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    if nnunet:
        right.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, png)


def save_figure(fig, png: str | Path, overwrite: bool = True, dpi: int = 110) -> Path:  # noqa: ANN001
    """Write `fig` as PNG atomically and close it."""
    png = Path(png)
    with atomic_path(png, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    pyplot().close(fig)
    return png
