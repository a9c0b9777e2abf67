"""`generate_phantom`: a seeded abdominal CT with its TotalSegmentator labels, 14-label anatomy and LN mask.

The phantom is the embedded demo data and the ground truth for fast tests: it exercises the
same code paths as a real CT (the anatomy map is made from its TotalSegmentator-style labels
by `totalseg_to_anatomy`, LN statistics by `lymph_node_components`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from LNSynthLib.anatomy.groups import totalseg_to_anatomy
from LNSynthLib.anatomy.lymph_nodes import NodeStats, lymph_node_components
from LNSynthLib.phantom import parameters as P
from LNSynthLib.phantom import tissues as T
from LNSynthLib.phantom.canvas import Canvas
from LNSynthLib.phantom.layout import draw_anatomy
from LNSynthLib.phantom.negatives import draw_lookalikes, draw_retroperitoneal_tubes
from LNSynthLib.phantom.nodes import place_nodes
from LNSynthLib.phantom.render import render_hu
from LNSynthLib.volumes.geometry import Geometry, Volume


@dataclass
class Phantom:
    ct: Volume          # HU, float32
    totalseg: Volume    # TotalSegmentator `total` class ids, uint8
    anatomy: Volume     # 14-label map, uint8
    ln: Volume          # lymph-node mask, uint8 0/1 (a fatty hilum is part of its node)
    nodes: list[NodeStats]
    tissue: Volume | None = None   # phantom tissue codes (`tissues`): where the hard negatives and hila are


def generate_phantom(seed: int = 0, shape_zyx: tuple[int, int, int] = (96, 128, 128),
                     spacing_xyz: tuple[float, float, float] = (1.0, 1.0, 1.0),
                     n_nodes: int | None = None) -> Phantom:
    """Build one phantom; the same arguments always give the same phantom."""
    if min(shape_zyx) < 16:
        raise ValueError(f"phantom shape {shape_zyx} is too small (at least 16 voxels per axis)")
    rng = np.random.default_rng(seed)
    canvas = Canvas(shape_zyx, spacing_xyz)
    vessels, frame = draw_anatomy(canvas, rng)
    draw_retroperitoneal_tubes(canvas, frame)
    lo, hi = P.NODE_COUNT_RANGE
    wanted = int(rng.integers(lo, hi + 1)) if n_nodes is None else int(n_nodes)
    place_nodes(canvas, vessels, rng, wanted)
    draw_lookalikes(canvas, frame, vessels)
    geometry = Geometry(canvas.spacing, canvas.origin_xyz)
    ct = render_hu(canvas, rng)
    ln = np.isin(canvas.tissue, T.LN_TISSUES).astype(np.uint8)
    ln_volume = Volume(ln, geometry)
    anatomy = totalseg_to_anatomy(canvas.ts, ct)
    return Phantom(ct=Volume(ct, geometry), totalseg=Volume(canvas.ts, geometry), anatomy=Volume(anatomy, geometry),
                   ln=ln_volume, nodes=lymph_node_components(ln_volume), tissue=Volume(canvas.tissue, geometry))
