"""Lymph nodes for the phantom: real-size, lobulated nodes in fat along the vessels, some against them.

A candidate node (shape from `node_shapes`) is placed beside a random point of a vessel
centreline. It is accepted only if the node grown by a safety gap lies in visceral fat — or, for
the share of nodes placed against their vessel, in fat and that one vessel — so a node never
touches an organ, another node or a hard negative, and touches a vessel only with no fat between.
Each node gets its own mean HU, and some a fatty hilum (still part of the LN label).
"""

from __future__ import annotations

import numpy as np

from LNSynthLib.anatomy.groups import totalseg_class_ids
from LNSynthLib.phantom import parameters as P
from LNSynthLib.phantom import tissues as T
from LNSynthLib.phantom.canvas import Canvas
from LNSynthLib.phantom.layout import Vessel
from LNSynthLib.phantom.node_shapes import NodeShape, draw_shape, draw_volume_cm3, hilum, perpendicular_pair

TRIES_PER_SHAPE = 40   # positions tried for one drawn shape before drawing another of the same volume


def min_short_axis_mm(canvas: Canvas) -> float:
    """Short-axis floor of the drawn shape on this grid: 5 mm, or a few in-plane voxels on coarse grids.

    Plus one voxel: voxelising an ellipse of width w off the voxel centres can lose a voxel
    across, and the floor is meant for the measured (voxel) short axis.
    """
    voxel = max(canvas.spacing[:2])
    return max(P.NODE_MIN_SHORT_AXIS_MM, P.NODE_MIN_SHORT_AXIS_VOXELS * voxel) + voxel


def place_nodes(canvas: Canvas, vessels: list[Vessel], rng: np.random.Generator, n_nodes: int,
                max_tries: int = 400) -> int:
    """Paint up to `n_nodes` nodes (tissues NODE/NODE_HILUM, TotalSegmentator id 0); return how many were placed."""
    ids = totalseg_class_ids()
    k = canvas.size_factor
    floor = min_short_axis_mm(canvas)
    gap = max(P.NODE_GAP_MM * k, 1.5 * max(canvas.spacing))   # a scaled-down abdomen has less fat
    weights = np.array([v.radius * np.linalg.norm(np.diff(v.points, axis=0), axis=1).sum() for v in vessels])
    weights = weights / weights.sum()
    placed = 0
    for _ in range(n_nodes):
        # The volume is drawn once per node, so crowding does not bias node sizes towards small ones ...
        volume = draw_volume_cm3(rng) * 1000.0 * k ** 3
        shape, vessel = None, None
        # ... except while the phantom holds fewer than the minimum count: then try harder, and after
        # every `max_tries` failures draw another volume (a crowded phantom still gets its nodes).
        below_minimum = placed < P.NODE_COUNT_RANGE[0]
        for attempt in range(max_tries * (3 if below_minimum else 1)):
            if below_minimum and attempt and attempt % max_tries == 0:
                volume = draw_volume_cm3(rng) * 1000.0 * k ** 3
            if attempt % TRIES_PER_SHAPE == 0:
                vessel = vessels[rng.choice(len(vessels), p=weights)]
                seg = int(rng.integers(len(vessel.points) - 1))
                direction = vessel.points[seg + 1] - vessel.points[seg]
                shape = draw_shape(rng, volume, direction, floor)
                touch = rng.uniform() < P.TOUCH_VESSEL_FRACTION
            center = _candidate(vessel, seg, shape, touch, gap, min(canvas.spacing), rng)
            found = _fits(canvas, center, shape, gap, ids[vessel.name] if touch else None)
            if found is not None:
                _paint(canvas, center, shape, found, rng)
                placed += 1
                break
    return placed


def _candidate(vessel: Vessel, seg: int, shape: NodeShape, touch: bool, gap: float, voxel: float,
               rng: np.random.Generator) -> np.ndarray:
    """Centre beside the vessel: against its wall (`touch`) or a gap and a little fat away."""
    p, q = vessel.points[seg], vessel.points[seg + 1]
    axis = (q - p) / np.linalg.norm(q - p)
    e1, e2 = perpendicular_pair(axis)
    theta = rng.uniform(0, 2 * np.pi)
    out = np.cos(theta) * e1 + np.sin(theta) * e2
    reach = shape.extent_along(-out)
    if touch:
        dist = vessel.radius + reach + 0.5 * voxel   # on the wall: no fat voxel between node and vessel
    else:
        dist = vessel.radius + reach + gap + rng.uniform(*P.NODE_NEAR_VESSEL_MM) * shape.short_axis_mm / 2
    return p + rng.uniform(0, 1) * (q - p) + dist * out


def _fits(canvas: Canvas, center: np.ndarray, shape: NodeShape, gap: float, vessel_ts: int | None):
    """(box, node mask) if the node and its gap lie in fat (and the touched vessel); else None."""
    lo, hi = shape.bounds_mm()
    lo, hi = center + lo - gap, center + hi + gap
    if np.any(lo < (canvas.x[0], canvas.y[0], canvas.z[0])) or np.any(hi > (canvas.x[-1], canvas.y[-1], canvas.z[-1])):
        return None   # no node clipped by the volume border
    if not _quick_clear(canvas, center, 0.95 * (shape.short_axis_mm / 2 + gap), vessel_ts):
        return None
    found = canvas.box(lo, hi)
    if found is None:
        return None
    box, zz, yy, xx = found
    dx, dy, dz = xx - center[0], yy - center[1], zz - center[2]
    grown = shape.inside(dx, dy, dz, grow_mm=gap)
    tissue, ts = canvas.tissue[box][grown], canvas.ts[box][grown]
    ok = (tissue == T.VISCERAL_FAT) & (ts == 0)
    if vessel_ts is not None:
        ok |= ts == vessel_ts
    if not ok.size or not ok.all():
        return None
    mask = shape.inside(dx, dy, dz)
    if not mask.any() or not np.all(canvas.tissue[box][mask] == T.VISCERAL_FAT):
        return None   # a node touching its vessel must not lose voxels to it (its shape and size stay whole)
    return box, mask, (dx, dy, dz)


def _quick_clear(canvas: Canvas, center: np.ndarray, radius: float, vessel_ts: int | None) -> bool:
    """Necessary condition, cheap: the centre and 6 points `radius` away are free fat (or the touched vessel).

    The grown node holds the ball of its main lobe's short semi-axis plus the gap around the centre.
    """
    offsets = np.array([[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]]) * radius
    pts = center + offsets
    spacing = np.array(canvas.spacing)
    origin = np.array(canvas.origin_xyz)
    idx = np.rint((pts - origin) / spacing).astype(int)
    shape_xyz = np.array(canvas.shape[::-1])
    idx = np.clip(idx, 0, shape_xyz - 1)
    tissue = canvas.tissue[idx[:, 2], idx[:, 1], idx[:, 0]]
    ts = canvas.ts[idx[:, 2], idx[:, 1], idx[:, 0]]
    ok = (tissue == T.VISCERAL_FAT) & (ts == 0)
    if vessel_ts is not None:
        ok |= ts == vessel_ts
    return bool(ok.all())


def _paint(canvas: Canvas, center: np.ndarray, shape: NodeShape, found, rng: np.random.Generator) -> None:
    box, mask, (dx, dy, dz) = found
    canvas.paint(box, mask, T.NODE, 0, hu=rng.uniform(*P.NODE_HU_RANGE))
    fat_core = hilum(rng, shape)
    min_short = max(P.HILUM_MIN_SHORT_AXIS_MM, P.HILUM_MIN_SHORT_AXIS_VOXELS * max(canvas.spacing))
    if fat_core is None or shape.short_axis_mm < min_short:
        return
    offset, semi, rot = fat_core
    core = NodeShape(offset[None], semi[None], rot[None]).inside(dx, dy, dz)
    canvas.paint(box, core & mask, T.NODE_HILUM, 0, hu=rng.uniform(*P.HILUM_HU_RANGE))
