"""Per-node statistics of a lymph-node mask: count, volume, short and long axis, centroid.

Short and long axis follow the radiological (RECIST-style) convention, measured in the axial
plane: on each axial slice the node's cross-section is projected on its two in-plane principal
axes (eigenvectors of the covariance of its voxel centres in millimetres); the extent along the
first axis is that slice's long diameter and along the perpendicular axis its short diameter,
each including one voxel footprint so a single voxel measures one voxel wide. A node's
`long_axis_mm` and `short_axis_mm` are the largest values over its slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from LNSynthLib.volumes.geometry import Volume
from LNSynthLib.volumes.masks import label_components


@dataclass(frozen=True)
class NodeStats:
    label: int                                  # component number in the labelled mask (1..N)
    voxel_count: int
    volume_mm3: float
    short_axis_mm: float
    long_axis_mm: float
    centroid_index_zyx: tuple[float, float, float]  # array order (continuous)
    centroid_lps: tuple[float, float, float]        # physical LPS millimetres (x, y, z)


def _axial_axes(ys: np.ndarray, xs: np.ndarray, sy: float, sx: float) -> tuple[float, float]:
    """(long, short) diameters in mm of one axial cross-section."""
    pts = np.stack([xs * sx, ys * sy], axis=1).astype(float)
    if len(pts) == 1:
        return max(sx, sy), min(sx, sy)
    centred = pts - pts.mean(axis=0)
    cov = centred.T @ centred
    _, vecs = np.linalg.eigh(cov)
    main, perp = vecs[:, 1], vecs[:, 0]

    def extent(axis: np.ndarray) -> float:
        proj = centred @ axis
        footprint = abs(axis[0]) * sx + abs(axis[1]) * sy
        return float(proj.max() - proj.min() + footprint)

    a, b = extent(main), extent(perp)
    return max(a, b), min(a, b)


def lymph_node_components(ln: Volume) -> list[NodeStats]:
    """Statistics of every connected lymph node in a 0/1 mask, ordered by component label."""
    mask = np.asarray(ln.array) > 0
    # Label only inside the bounding box of the mask: nodes are small, CT volumes are not.
    bounds = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    if any(len(b) == 0 for b in bounds):
        return []
    outer = tuple(slice(int(b[0]), int(b[-1]) + 1) for b in bounds)
    labels, _ = label_components(mask[outer])
    sx, sy, _ = ln.geometry.spacing
    voxel_mm3 = ln.voxel_volume_mm3
    stats: list[NodeStats] = []
    for idx, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        comp = labels[box] == idx
        zz, yy, xx = np.nonzero(comp)
        long_mm, short_mm = 0.0, 0.0
        for z in np.unique(zz):
            sel = zz == z
            lo, sh = _axial_axes(yy[sel], xx[sel], sy, sx)
            long_mm, short_mm = max(long_mm, lo), max(short_mm, sh)
        offset = np.array([s.start + o.start for s, o in zip(box, outer, strict=True)], dtype=float)
        centroid_zyx = np.array([zz.mean(), yy.mean(), xx.mean()]) + offset
        centroid_lps = ln.geometry.index_to_physical(centroid_zyx[::-1])
        stats.append(NodeStats(idx, int(comp.sum()), float(comp.sum() * voxel_mm3), round(short_mm, 3),
                               round(long_mm, 3), tuple(float(v) for v in centroid_zyx),
                               tuple(float(v) for v in centroid_lps)))
    return stats
