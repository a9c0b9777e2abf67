"""Hard negatives: tubes that look like lymph nodes in an axial slice but are never labelled LN.

On real portal-venous CT the structures most often mistaken for nodes are collapsed,
unopacified small-bowel segments in the mesentery, the ureters on the psoas, and small veins
(gonadal, mesenteric branches): soft-tissue round or oval cross-sections of 20–90 HU beside the
vessels where the nodes are. They are painted into visceral fat, each with its own mean HU
(`parameters`). The ureters and gonadal veins are fixed anatomy, drawn before the
nodes; the small veins and bowel segments are drawn after the nodes, in the free fat beside the
same vessels, so they sit next to and among the nodes without taking their places. A gap of fat
always separates a hard negative from a node.
Ureters and small veins have no TotalSegmentator class (they are "body" in the anatomy map,
like the nodes); collapsed bowel is labelled small bowel, as TotalSegmentator would.
"""

from __future__ import annotations

import numpy as np

from LNSynthLib.anatomy.groups import totalseg_class_ids
from LNSynthLib.phantom import parameters as P
from LNSynthLib.phantom import tissues as T
from LNSynthLib.phantom.canvas import Canvas, paint_tube, tube_masks
from LNSynthLib.phantom.layout import Frame, Vessel
from LNSynthLib.phantom.node_shapes import perpendicular_pair


def _fat(t: np.ndarray, s: np.ndarray) -> np.ndarray:
    return (t == T.VISCERAL_FAT) & (s == 0)


def _sizes(c: Canvas, f: Frame):  # noqa: ANN202
    """Radius and count draws, both scaled to the phantom (size factor k; counts with the area, k²)."""
    rng, k = f.rng, c.size_factor
    floor = P.HARD_NEGATIVE_MIN_RADIUS_VOXELS * max(c.spacing)

    def radius(rng_mm: tuple[float, float]) -> float:
        return max(rng.uniform(*rng_mm) * k, floor)

    def number(count: tuple[int, int]) -> int:   # with the fat's cross-section area in a scaled-down abdomen
        return max(1, round(int(rng.integers(count[0], count[1] + 1)) * k * k))

    return radius, number


def draw_retroperitoneal_tubes(c: Canvas, f: Frame) -> int:
    """Ureters from the renal pelvis down on the psoas, a gonadal vein just in front of each (before the nodes)."""
    rng = f.rng
    radius, _ = _sizes(c, f)
    rv = f.r(0.15, 2)
    for side in (-1.0, 1.0):
        ws = np.linspace(0.5, -0.05, 6)
        psoas_r = np.interp(ws, [-0.05, 0.8], [0.14, 0.04])
        x = side * (rv + f.r(0.1) + f.r(0.05) * ws)
        y = f.spine_y - f.r(0.02) - np.array([f.r(r) for r in psoas_r])
        ureter_r = radius(P.URETER_RADIUS_MM)
        pts = np.stack([x, y - ureter_r, -f.fz / 2 + ws * f.fz], axis=1)
        paint_tube(c, pts, ureter_r, T.URETER, None, where=_fat, hu=rng.uniform(*P.URETER_HU))
        vein_r = radius(P.SMALL_VEIN_RADIUS_MM)
        gonadal = pts[1:] + np.array([side * f.r(0.03), -(ureter_r + vein_r + f.r(0.05)), 0.0])
        paint_tube(c, gonadal, vein_r, T.SMALL_VEIN, None, where=_fat, hu=rng.uniform(*P.SMALL_VEIN_HU))
    return 4


def draw_lookalikes(c: Canvas, f: Frame, vessels: list[Vessel]) -> int:
    """Small veins and collapsed bowel segments among the nodes (after them); return how many were placed."""
    rng, k = f.rng, c.size_factor
    radius, number = _sizes(c, f)
    count = 0
    # Small veins and collapsed bowel beside the same vessels the nodes follow, free in the fat with a
    # gap all round, like nodes: the look-alikes a node detector meets.
    ids = totalseg_class_ids()
    gap = max(P.NODE_GAP_MM * k, 1.5 * max(c.spacing))
    weights = np.array([v.radius * np.linalg.norm(np.diff(v.points, axis=0), axis=1).sum() for v in vessels])
    weights /= weights.sum()
    kinds = [(T.SMALL_VEIN, None, P.SMALL_VEIN_RADIUS_MM, P.SMALL_VEIN_LENGTH_MM, P.SMALL_VEIN_HU, P.SMALL_VEIN_TILT)
             ] * number(P.SMALL_VEIN_COUNT)
    kinds += [(T.COLLAPSED_BOWEL, ids["small_bowel"], P.COLLAPSED_BOWEL_RADIUS_MM, P.COLLAPSED_BOWEL_LENGTH_MM,
               P.COLLAPSED_BOWEL_HU, P.COLLAPSED_BOWEL_TILT)] * number(P.COLLAPSED_BOWEL_COUNT)
    for tissue, ts, radius_mm, length_mm, hu, tilt in kinds:
        r = radius(radius_mm)
        for _ in range(P.HARD_NEGATIVE_TRIES):
            vessel = vessels[rng.choice(len(vessels), p=weights)]
            pts = _beside(rng, vessel, r, gap + rng.uniform(0, P.LOOKALIKE_SPREAD_MM * k), rng.uniform(*length_mm) * k,
                          tilt)
            if _free(c, pts, r + gap):
                paint_tube(c, pts, r, tissue, ts, where=_fat, hu=rng.uniform(*hu))
                count += 1
                break
    return count


def _beside(rng: np.random.Generator, vessel: Vessel, radius: float, gap: float, length: float,
            tilt: float) -> np.ndarray:
    """A short bent tube `gap` mm from a vessel's wall, running roughly along it (so round in axial slices)."""
    seg = int(rng.integers(len(vessel.points) - 1))
    p, q = vessel.points[seg], vessel.points[seg + 1]
    axis = (q - p) / np.linalg.norm(q - p)
    e1, e2 = perpendicular_pair(axis)
    theta = rng.uniform(0, 2 * np.pi)
    out = np.cos(theta) * e1 + np.sin(theta) * e2
    center = p + rng.uniform(0, 1) * (q - p) + out * (vessel.radius + radius + gap)
    d = axis + tilt * rng.normal(size=3)
    d /= np.linalg.norm(d)
    bend = rng.normal(0, P.LOOKALIKE_BEND * length, 3) * np.array([1.0, 1.0, 0.3])
    return np.stack([center - d * length / 2, center + bend, center + d * length / 2])


def _free(c: Canvas, pts: np.ndarray, radius: float) -> bool:
    """True if a tube of `radius` along `pts` lies wholly inside the volume and in free visceral fat."""
    lo = np.array([c.x[0], c.y[0], c.z[0]]) + radius
    hi = np.array([c.x[-1], c.y[-1], c.z[-1]]) - radius
    if np.any(pts < lo) or np.any(pts > hi):
        return False
    return all(bool(_fat(c.tissue[box][mask], c.ts[box][mask]).all()) for box, mask in tube_masks(c, pts, radius))
