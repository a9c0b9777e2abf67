"""Figure for the README: phantom vs. real CT, axial slices with the 14-label anatomy and LN contours."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from LNSynthLib.anatomy.groups import LABEL_NAMES, NUM_LABELS
from LNSynthLib.report.figures import pyplot, save_figure
from LNSynthLib.volumes.geometry import Volume

SOFT_TISSUE_WINDOW = (-160.0, 240.0)   # W 400 / L 40
# One colour per label; air is left transparent and body nearly so, so the CT stays readable.
LABEL_COLORS = ["#000000", "#f2d7a6", "#b5542e", "#7b3294", "#e7298a", "#e6ab02", "#66a61e", "#a6d854",
                "#1b9e77", "#e31a1c", "#1f78b4", "#f7f7f7", "#d95f02", "#8da0cb"]
LABEL_ALPHA = [0.0, 0.12] + [0.45] * (NUM_LABELS - 2)


def _display_slice(vol: Volume, z: int) -> np.ndarray:
    """Axial slice in radiological display (patient right on the left, anterior at the top)."""
    img = vol.array[z]
    d = vol.geometry.direction
    if d[0] < 0:
        img = img[:, ::-1]
    if d[4] < 0:
        img = img[::-1, :]
    return img


def _node_slice(ln: Volume, anatomy: Volume) -> int:
    """Axial slice through a node that shows the most anatomy labels (ties: larger node cross-section)."""
    area = (ln.array > 0).sum(axis=(1, 2))
    if not area.any():
        return ln.shape[0] // 2
    score = [(len(np.unique(anatomy.array[z])), area[z]) if area[z] else (0, 0) for z in range(ln.shape[0])]
    return int(max(range(ln.shape[0]), key=lambda z: score[z]))


def _panel(ax, ct: Volume, anatomy: Volume, ln: Volume, title: str) -> None:  # noqa: ANN001
    from matplotlib.colors import to_rgba

    z = _node_slice(ln, anatomy)
    hu = _display_slice(ct, z)
    labels = _display_slice(anatomy, z)
    nodes = _display_slice(ln, z)
    sx, sy, _ = ct.geometry.spacing
    extent = (0, hu.shape[1] * sx, hu.shape[0] * sy, 0)
    ax.imshow(np.clip(hu, *SOFT_TISSUE_WINDOW), cmap="gray", vmin=SOFT_TISSUE_WINDOW[0],
              vmax=SOFT_TISSUE_WINDOW[1], extent=extent, interpolation="nearest")
    rgba = np.zeros(labels.shape + (4,), dtype=float)
    for value in range(NUM_LABELS):
        r, g, b, _ = to_rgba(LABEL_COLORS[value])
        rgba[labels == value] = (r, g, b, LABEL_ALPHA[value])
    ax.imshow(rgba, extent=extent, interpolation="nearest")
    if nodes.any():
        # Voxel-centre coordinates in the same frame as the image (row 0 at the top).
        xs = (np.arange(hu.shape[1]) + 0.5) * sx
        ys = (np.arange(hu.shape[0]) + 0.5) * sy
        ax.contour(xs, ys, (nodes > 0).astype(float), levels=[0.5], colors=["yellow"], linewidths=1.6)
    ax.set_title(title, fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])


def comparison_figure(phantom: tuple[Volume, Volume, Volume], real: tuple[Volume, Volume, Volume],
                      out_png: str | Path, overwrite: bool = False,
                      titles: tuple[str, str] = ("Phantom (procedural)", "Real CT (TotalSegmentator labels)")) -> Path:
    """Write the side-by-side PNG; each tuple is (CT in HU, 14-label anatomy, LN mask)."""
    from matplotlib.patches import Patch

    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(12.5, 5.8), constrained_layout=True)
    _panel(axes[0], *phantom, titles[0])
    _panel(axes[1], *real, titles[1])
    handles = [Patch(facecolor=LABEL_COLORS[v], edgecolor="0.3", label=f"{v} {LABEL_NAMES[v]}")
               for v in range(NUM_LABELS)]
    handles.append(Patch(facecolor="none", edgecolor="yellow", linewidth=1.6, label="lymph node"))
    fig.legend(handles=handles, loc="outside right center", fontsize=9, frameon=False)
    fig.suptitle(f"14-label anatomy condition, CT window {SOFT_TISSUE_WINDOW[0]:g}..{SOFT_TISSUE_WINDOW[1]:g} HU",
                 fontsize=11)
    return save_figure(fig, out_png, overwrite)


def make_readme_figure(out_png: str | Path, real_ct: str | Path, real_labels: str | Path, seed: int = 0,
                       overwrite: bool = False) -> Path:
    """Phantom (seed `seed`) next to the real example CT with nodes painted near the aorta."""
    from LNSynthLib.anatomy.build import anatomy_from_labels, guess_source
    from LNSynthLib.phantom.generate import generate_phantom
    from LNSynthLib.phantom.painted import paint_nodes_near_vessels
    from LNSynthLib.volumes.io import read_ct, read_volume

    p = generate_phantom(seed=seed, shape_zyx=(96, 256, 256), spacing_xyz=(1.4, 1.4, 3.0))
    ct = read_ct(real_ct)
    labels = read_volume(real_labels)
    anatomy = anatomy_from_labels(labels, ct, guess_source(labels, real_labels), path=real_labels, ct_path=real_ct)
    ct_nodes, ln = paint_nodes_near_vessels(ct, anatomy, n_nodes=3, radius_mm=7.0, seed=seed)
    return comparison_figure((p.ct, p.anatomy, p.ln), (ct_nodes, anatomy, ln), out_png, overwrite)


# --- Realism figure: phantom vs real CT at the same window, same mm scale -----------------------------
REALISM_CROP_MM = 80.0   # side of the zoomed panels


def _slice_through_nodes(ln: np.ndarray) -> int:
    """Axial slice crossing the most distinct nodes (ties: more LN voxels)."""
    from LNSynthLib.volumes.masks import label_components

    labels, _ = label_components(ln)
    score = [(len(np.unique(labels[z])) - 1, int((labels[z] > 0).sum())) for z in range(ln.shape[0])]
    return int(max(range(ln.shape[0]), key=lambda z: score[z]))


def _show(ax, img: np.ndarray, spacing_xy: tuple[float, float], title: str,  # noqa: ANN001
          center_rc: tuple[float, float] | None = None) -> None:
    """Draw a slice (or an 80 mm crop around `center_rc`, pixel row/col) with axes in mm."""
    sx, sy = spacing_xy
    extent = (0, img.shape[1] * sx, img.shape[0] * sy, 0)
    ax.imshow(np.clip(img, *SOFT_TISSUE_WINDOW), cmap="gray", vmin=SOFT_TISSUE_WINDOW[0],
              vmax=SOFT_TISSUE_WINDOW[1], extent=extent, interpolation="nearest")
    if center_rc is not None:
        cy, cx = (center_rc[0] + 0.5) * sy, (center_rc[1] + 0.5) * sx
        half = REALISM_CROP_MM / 2
        ax.set_xlim(cx - half, cx + half)
        ax.set_ylim(cy + half, cy - half)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def _outline(ax, mask: np.ndarray, spacing_xy: tuple[float, float], color: str, style: str = "solid") -> None:  # noqa: ANN001
    if mask.any():
        sx, sy = spacing_xy
        xs, ys = (np.arange(mask.shape[1]) + 0.5) * sx, (np.arange(mask.shape[0]) + 0.5) * sy
        ax.contour(xs, ys, mask.astype(float), levels=[0.5], colors=[color], linewidths=1.2, linestyles=style)


def _real_panel(path: str | Path, focus: str | Path | None) -> tuple[np.ndarray, tuple[float, float], tuple]:
    """A real CT's display slice and crop centre: the slice and point of the aorta (TotalSegmentator
    labels), or the middle slice and a point 25 mm in front of the spine (spine label 2 of a label file)."""
    from LNSynthLib.anatomy.groups import totalseg_class_ids
    from LNSynthLib.volumes.io import read_ct, read_volume

    ct = read_ct(path)
    z, center = ct.shape[0] // 2, (ct.shape[1] / 2, ct.shape[2] / 2)
    if focus is not None:
        labels = read_volume(focus)
        disp = Volume(labels.array, ct.geometry)
        aorta = labels.array == totalseg_class_ids()["aorta"]
        if aorta.any():   # TotalSegmentator labels: the middle of the abdominal aorta
            zs = np.flatnonzero(aorta.any(axis=(1, 2)))
            z = int(zs[len(zs) // 2])
            rc = np.argwhere(_display_slice(Volume(aorta.astype(np.uint8), ct.geometry), z))
            center = tuple(rc.mean(axis=0))
        else:             # spine label: the prevertebral space in front of it
            z = ct.shape[0] // 2
            rc = np.argwhere(_display_slice(disp, z) == 2)
            if len(rc):   # display rows grow posteriorly: the spine's top edge minus 25 mm
                center = (rc[:, 0].min() - 25.0 / ct.geometry.spacing[1], rc[:, 1].mean())
    return _display_slice(ct, z), center, tuple(ct.geometry.spacing[:2])


def realism_figure(out_png: str | Path, real: list[tuple[str, str | Path, str | Path | None]], seed: int = 0,
                   shape_zyx: tuple[int, int, int] = (300, 512, 512),
                   spacing_xyz: tuple[float, float, float] = (0.8, 0.8, 1.5), overwrite: bool = False) -> Path:
    """Phantom vs real CTs, W400/L40: full axial slices (top) and 80 mm crops (bottom), all in mm.

    `real`: (title, CT path, label file or None) per real CT; the label file only chooses where to
    look (aorta of TotalSegmentator labels, or the prevertebral space in front of label 2 = spine).
    The phantom panels outline its lymph nodes (yellow) and its hard negatives (cyan, dashed); the
    real CTs have no lymph-node ground truth, so nothing is outlined there.
    """
    plt = pyplot()
    from LNSynthLib.phantom import tissues as T
    from LNSynthLib.phantom.generate import generate_phantom

    panels = [(name, *_real_panel(path, focus)) for name, path, focus in real]   # bad inputs fail first
    p = generate_phantom(seed=seed, shape_zyx=shape_zyx, spacing_xyz=spacing_xyz)
    ln = p.ln.array > 0
    z = _slice_through_nodes(ln)
    sp = tuple(p.ct.geometry.spacing[:2])
    hu, nodes = _display_slice(p.ct, z), _display_slice(p.ln, z) > 0
    negatives = np.isin(_display_slice(p.tissue, z), T.HARD_NEGATIVE_TISSUES)
    rc = np.argwhere(nodes)
    node_center = tuple(rc.mean(axis=0)) if len(rc) else (hu.shape[0] / 2, hu.shape[1] / 2)
    cols = 1 + len(real)
    fig, axes = plt.subplots(2, cols, figsize=(4.6 * cols, 9.4), constrained_layout=True, squeeze=False)
    title = f"Phantom {shape_zyx[2]}×{shape_zyx[1]}, {sp[0]:g} mm (seed {seed})"
    for row, center in ((0, None), (1, node_center)):
        _show(axes[row, 0], hu, sp, title if row == 0 else "Phantom, 80 mm around nodes", center)
        _outline(axes[row, 0], nodes, sp, "yellow")
        _outline(axes[row, 0], negatives, sp, "cyan", "dashed")
    for k, (name, img, center, rsp) in enumerate(panels, start=1):
        _show(axes[0, k], img, rsp, f"Real: {name}, {rsp[0]:.2g} mm")
        _show(axes[1, k], img, rsp, f"Real: {name}, 80 mm crop", center)
    fig.suptitle(f"Same window W{SOFT_TISSUE_WINDOW[1] - SOFT_TISSUE_WINDOW[0]:g}/L"
                 f"{(SOFT_TISSUE_WINDOW[1] + SOFT_TISSUE_WINDOW[0]) / 2:g}. Phantom: lymph nodes yellow, "
                 "hard negatives (collapsed bowel, ureters, small veins) cyan dashed; real CTs have no LN truth.",
                 fontsize=10)
    return save_figure(fig, out_png, overwrite, dpi=90)
