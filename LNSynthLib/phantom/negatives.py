"""Hard negatives: tubes that look like lymph nodes in an axial slice but are never labelled LN.

On real portal-venous CT the structures most often mistaken for nodes are collapsed,
unopacified small-bowel segments in the mesentery, the ureters on the psoas, and small veins
(gonadal, mesenteric branches): soft-tissue round or oval cross-sections of 20–90 HU beside the
vessels where the nodes are. They are painted here into visceral fat before the nodes, each with
its own mean HU (`parameters`), so nodes sit next to and among them but never touch them.
Ureters and small veins have no TotalSegmentator class (they are "body" in the anatomy map,
like the nodes); collapsed bowel is labelled small bowel, as TotalSegmentator would.
"""

from __future__ import annotations

import numpy as np

from LNSynthLib.anatomy.groups import totalseg_class_ids
from LNSynthLib.phantom import parameters as P
from LNSynthLib.phantom import tissues as T
from LNSynthLib.phantom.canvas import Canvas, paint_tube
from LNSynthLib.phantom.layout import Frame, Vessel


def _fat(t: np.ndarray, s: np.ndarray) -> np.ndarray:
    return (t == T.VISCERAL_FAT) & (s == 0)


def draw_hard_negatives(c: Canvas, f: Frame, vessels: list[Vessel]) -> int:
    """Paint ureters, gonadal and mesenteric veins and collapsed bowel segments; return how many structures."""
    rng, k = f.rng, c.size_factor
    floor = P.HARD_NEGATIVE_MIN_RADIUS_VOXELS * max(c.spacing)

    def radius(rng_mm: tuple[float, float]) -> float:
        return max(rng.uniform(*rng_mm) * k, floor)

    def number(count: tuple[int, int]) -> int:   # with the mesentery's cross-section area in a scaled-down abdomen
        return max(1, round(int(rng.integers(count[0], count[1] + 1)) * k * k))

    aorta = next(v for v in vessels if v.name == "aorta")
    front = aorta.points[:, 1].mean() - aorta.radius   # anterior wall of the aorta (y grows posteriorly)
    count = 0
    # Ureters from the renal pelvis down on the psoas; the gonadal vein runs just in front of each.
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
        count += 2
    # Root of the mesentery, in front of the aorta: small veins and collapsed bowel segments.
    lo = np.array([-0.35 * f.a, front - f.r(0.45), -f.fz / 2 + 0.1 * f.fz])
    hi = np.array([0.35 * f.a, front - f.r(0.05), -f.fz / 2 + 0.7 * f.fz])
    ids = totalseg_class_ids()
    for _ in range(number(P.SMALL_VEIN_COUNT)):
        pts = _bent_segment(rng, rng.uniform(lo, hi), rng.uniform(*P.SMALL_VEIN_LENGTH_MM) * k, tilt=0.35)
        paint_tube(c, pts, radius(P.SMALL_VEIN_RADIUS_MM), T.SMALL_VEIN, None, where=_fat,
                   hu=rng.uniform(*P.SMALL_VEIN_HU))
        count += 1
    for _ in range(number(P.COLLAPSED_BOWEL_COUNT)):
        pts = _bent_segment(rng, rng.uniform(lo, hi), rng.uniform(*P.COLLAPSED_BOWEL_LENGTH_MM) * k, tilt=0.8)
        paint_tube(c, pts, radius(P.COLLAPSED_BOWEL_RADIUS_MM), T.COLLAPSED_BOWEL, ids["small_bowel"],
                   where=_fat, hu=rng.uniform(*P.COLLAPSED_BOWEL_HU))
        count += 1
    return count


def _bent_segment(rng: np.random.Generator, start: np.ndarray, length: float, tilt: float) -> np.ndarray:
    """Three points, mostly craniocaudal (round in axial slices), bent a little in the middle."""
    d = np.array([rng.normal(0, tilt), rng.normal(0, tilt), 1.0])
    d /= np.linalg.norm(d)
    mid = start + d * length / 2 + rng.normal(0, 0.15 * length, 3) * np.array([1.0, 1.0, 0.3])
    return np.stack([start, mid, start + d * length])
