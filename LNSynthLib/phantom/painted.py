"""Paint lymph nodes into a real CT: spheres in fat near the arteries (test, demo and benchmark data).

No public small real CT ships with lymph-node masks, so tests and benchmarks paint nodes into
the real example CT: a sphere is accepted only where the whole sphere plus a gap lies in the
`body` label (fat, not an organ), close to the aorta or iliac arteries, and its HU is set to
soft tissue so the CT and the mask agree.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from LNSynthLib.anatomy.groups import LABEL_NAMES
from LNSynthLib.volumes.geometry import Volume

BODY, ARTERIES = LABEL_NAMES.index("body"), LABEL_NAMES.index("arteries")


def paint_nodes_near_vessels(ct: Volume, anatomy: Volume, n_nodes: int = 3, radius_mm: float = 7.0,
                             seed: int = 0, node_hu: float | None = 40.0,
                             max_distance_mm: float = 20.0) -> tuple[Volume, Volume]:
    """Return (CT with nodes at `node_hu` ± noise, or unchanged if None; LN mask 0/1) with up to `n_nodes` spheres."""
    rng = np.random.default_rng(seed)
    spacing_zyx = np.asarray(ct.geometry.spacing[::-1])
    gap = float(spacing_zyx.max())
    fat = (anatomy.array == BODY) & (ct.array > -200) & (ct.array < -30)
    clearance = ndimage.distance_transform_edt(anatomy.array == BODY, sampling=spacing_zyx)
    to_artery = ndimage.distance_transform_edt(anatomy.array != ARTERIES, sampling=spacing_zyx)
    ln = np.zeros(ct.shape, dtype=np.uint8)
    zz, yy, xx = np.ogrid[: ct.shape[0], : ct.shape[1], : ct.shape[2]]
    radius = float(radius_mm)
    placed: list[np.ndarray] = []
    while len(placed) < n_nodes and radius >= 1.5 * gap:
        ok = fat & (clearance >= radius + gap) & (to_artery <= radius + max_distance_mm)
        for c in placed:
            ok &= ((zz - c[0]) * spacing_zyx[0]) ** 2 + ((yy - c[1]) * spacing_zyx[1]) ** 2 + \
                  ((xx - c[2]) * spacing_zyx[2]) ** 2 > (2 * radius_mm + 2 * gap) ** 2
        candidates = np.argwhere(ok)
        if len(candidates) == 0:
            radius *= 0.8   # crowded: try smaller nodes rather than none
            continue
        center = candidates[rng.integers(len(candidates))]
        sphere = ((zz - center[0]) * spacing_zyx[0]) ** 2 + ((yy - center[1]) * spacing_zyx[1]) ** 2 + \
                 ((xx - center[2]) * spacing_zyx[2]) ** 2 <= radius * radius
        ln[sphere] = 1
        placed.append(center)
    out_ct = ct.array.copy()
    if node_hu is not None:
        noise = rng.normal(0.0, 10.0, int(ln.sum()))
        out_ct[ln > 0] = (node_hu + noise).astype(out_ct.dtype)
    return Volume(out_ct, ct.geometry), Volume(ln, ct.geometry)
