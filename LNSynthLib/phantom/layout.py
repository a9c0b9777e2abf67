"""Procedural abdominal anatomy: body wall, spine, muscles, vessels, solid organs and bowel.

Positions are fractions of the body's half-widths and sizes fractions of its size, so a small
test phantom is a scaled-down abdomen; each seed jitters positions and sizes and draws new
bowel loops and gas. Visceral structures are painted into fat only, in priority order (vessels,
then solid organs, then hollow organs), so nothing overlaps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from LNSynthLib.anatomy.groups import totalseg_class_ids
from LNSynthLib.phantom import tissues as T
from LNSynthLib.phantom.canvas import Canvas, ellipsoid_mask, paint_cylinder, paint_ellipsoid, paint_tube
from LNSynthLib.phantom.parameters import BODY_HALF_WIDTH_FRACTIONS, BODY_OUTLINE_BUMPS, ORGAN_OUTLINE_BUMPS


@dataclass
class Vessel:
    """A vessel centreline (mm, x/y/z) and radius: lymph nodes are placed along these."""

    name: str
    points: np.ndarray
    radius: float


def _fat(t: np.ndarray, s: np.ndarray) -> np.ndarray:
    return t == T.VISCERAL_FAT


def _soft(t: np.ndarray, s: np.ndarray) -> np.ndarray:
    return (t == T.VISCERAL_FAT) | (t == T.WALL_MUSCLE) | (t == T.SUBCUT_FAT)


def _inside(ts_id: int):
    return lambda t, s: s == ts_id


class Frame:
    """Maps body-relative coordinates (u, v, w) to millimetres; `spine_y` is set once the spine is drawn."""

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        fx, fy, fz = canvas.extent_xyz
        self.a = BODY_HALF_WIDTH_FRACTIONS[0] * fx * (1 + rng.uniform(-0.03, 0.03))
        self.b = BODY_HALF_WIDTH_FRACTIONS[1] * fy * (1 + rng.uniform(-0.03, 0.03))
        self.cy = 0.02 * fy
        self.s = min(self.a, self.b)
        self.fz = fz
        self.min_px = max(canvas.spacing)
        self.rng = rng
        self.spine_y = 0.0

    def p(self, u: float, v: float, w: float) -> np.ndarray:
        return np.array([u * self.a, self.cy + v * self.b, -self.fz / 2 + w * self.fz])

    def r(self, frac: float, min_voxels: float = 1.0) -> float:
        return max(frac * self.s, min_voxels * self.min_px)

    def j(self, spread: float = 0.05) -> float:
        return 1.0 + self.rng.uniform(-spread, spread)

    def bumps(self, amplitude: float = ORGAN_OUTLINE_BUMPS) -> tuple[float, np.ndarray]:
        """An organic outline for one organ (the same for its nested layers)."""
        return amplitude, self.rng.uniform(0.0, 2 * np.pi, 4)


def draw_anatomy(canvas: Canvas, rng: np.random.Generator) -> tuple[list[Vessel], Frame]:
    """Paint the whole abdomen onto `canvas`; return the vessel centrelines and the body frame."""
    ids = totalseg_class_ids()
    f = Frame(canvas, rng)
    _body_wall(canvas, f)
    spine_y = f.spine_y = _spine(canvas, f, ids)
    _muscles(canvas, f, ids, spine_y)
    vessels = _vessels(canvas, f, ids, spine_y)
    _solid_organs(canvas, f, ids, spine_y, vessels)
    _hollow_organs(canvas, f, ids, spine_y)
    return vessels, f


def _body_wall(c: Canvas, f: Frame) -> None:
    z = (-f.fz, f.fz)
    outline = f.bumps(BODY_OUTLINE_BUMPS)
    paint_cylinder(c, (0.0, f.cy), (f.a, f.b), z, T.SUBCUT_FAT, bumps=outline)
    fat = f.r(0.09 * f.j(0.2), 1.5)
    paint_cylinder(c, (0.0, f.cy), (f.a - fat, f.b - fat), z, T.WALL_MUSCLE, bumps=outline)
    wall = f.r(0.05, 1.5)
    paint_cylinder(c, (0.0, f.cy), (f.a - fat - wall, f.b - fat - wall), z, T.VISCERAL_FAT, bumps=outline)


def _ring(c: Canvas, center, semi, tissue_inner: int, ts_id: int, cortex: float, angle: float = 0.0,
          where=None) -> None:
    """Bone: cortical shell with cancellous inside."""
    paint_ellipsoid(c, center, semi, T.CORTEX, ts_id, angle, where)
    inner = np.maximum(np.asarray(semi) - cortex, 0.3 * np.asarray(semi))
    paint_ellipsoid(c, center, inner, tissue_inner, ts_id, angle, where=_inside(ts_id))


def _spine(c: Canvas, f: Frame, ids: dict[str, int]) -> float:
    levels = ["vertebrae_S1", "vertebrae_L5", "vertebrae_L4", "vertebrae_L3", "vertebrae_L2", "vertebrae_L1",
              "vertebrae_T12"]
    spine_y = f.cy + 0.45 * f.b
    rv = f.r(0.15, 2)
    cortex = f.r(0.025, 1)
    seg = f.fz / len(levels)
    canal_y = spine_y + rv + f.r(0.07, 1.5)
    for k, name in enumerate(levels):
        zc = -f.fz / 2 + (k + 0.5) * seg
        half = 0.4 * seg
        ts_id = ids[name]
        _ring(c, (0.0, spine_y, zc), (rv, rv * 0.85, half), T.BONE, ts_id, cortex)
        # Posterior arch and spinous process around the canal.
        _ring(c, (0.0, canal_y, zc), (rv * 0.8, rv * 0.75, half * 0.8), T.BONE, ts_id, cortex)
        _ring(c, (0.0, canal_y + rv * 0.9, zc), (rv * 0.25, rv * 0.6, half * 0.6), T.BONE, ts_id, cortex)
    # Discs between bodies (unlabelled in TotalSegmentator), then the cord in the canal.
    paint_cylinder(c, (0.0, spine_y), (rv, rv * 0.85), (-f.fz, f.fz), T.DISC,
                   where=lambda t, s: (s == 0))
    paint_cylinder(c, (0.0, canal_y), (rv * 0.4, rv * 0.4), (-f.fz, f.fz), T.CORD, ids["spinal_cord"])
    # Iliac wings low in the volume, ribs high.
    for side, name in ((-1, "hip_right"), (1, "hip_left")):
        _ring(c, f.p(side * 0.62, 0.35, 0.08), (f.r(0.08, 1.5), f.r(0.32), 0.18 * f.fz), T.BONE, ids[name],
              cortex, angle=side * 0.5, where=_soft)
    for k, w in enumerate((0.9, 0.75)):
        for side, prefix in ((-1, "rib_right_"), (1, "rib_left_")):
            angles = np.linspace(0.1, 1.2, 8)
            rx, ry = f.a - f.r(0.12), f.b - f.r(0.12)
            pts = [(side * rx * np.cos(t), f.cy + ry * np.sin(t), -f.fz / 2 + w * f.fz) for t in angles]
            paint_tube(c, pts, f.r(0.03, 1), T.CORTEX, ids[prefix + str(12 - k)], where=_soft)
    return spine_y


def _muscles(c: Canvas, f: Frame, ids: dict[str, int], spine_y: float) -> None:
    rv = f.r(0.15, 2)
    for side, sfx in ((-1, "right"), (1, "left")):
        x = side * (rv + f.r(0.14))
        paint_ellipsoid(c, (x * 0.9, spine_y + rv + f.r(0.15), 0.0), (f.r(0.16), f.r(0.15), f.fz), T.MUSCLE,
                        ids[f"autochthon_{sfx}"], where=_soft)
        # Psoas grows from the upper lumbar spine towards the pelvis.
        ws = np.linspace(0.8, -0.05, 5)
        radii = np.linspace(0.04, 0.14, 5)
        for k in range(4):
            pts = [(side * (rv + f.r(radii[i]) * 0.8), spine_y - f.r(0.02), -f.fz / 2 + ws[i] * f.fz)
                   for i in (k, k + 1)]
            paint_tube(c, pts, f.r(radii[k + 1], 1.5), T.MUSCLE, ids[f"iliopsoas_{sfx}"], where=_fat)


def _vessels(c: Canvas, f: Frame, ids: dict[str, int], spine_y: float) -> list[Vessel]:
    rv = f.r(0.15, 2)
    ra, rc = f.r(0.085, 1.5) * f.j(), f.r(0.09, 1.5) * f.j()
    vy = spine_y - rv - max(ra, rc) - f.r(0.02, 0.5)
    bif = 0.3 + f.rng.uniform(-0.04, 0.04)
    top = 1.05 * f.fz / 2
    aorta = np.array([(f.r(0.12), vy, top), (f.r(0.1), vy, -f.fz / 2 + bif * f.fz)])
    ivc = np.array([(-f.r(0.16), vy + 0.1 * rc, top), (-f.r(0.14), vy, -f.fz / 2 + (bif + 0.02) * f.fz)])
    vessels = [Vessel("aorta", aorta, ra), Vessel("inferior_vena_cava", ivc, rc)]
    bottom = -0.55 * f.fz
    for side, sfx in ((-1, "right"), (1, "left")):
        art = np.array([aorta[-1], (side * 0.34 * f.a, vy - f.r(0.05), bottom)])
        vein = np.array([ivc[-1], (side * 0.30 * f.a, vy + f.r(0.1), bottom)])
        vessels += [Vessel(f"iliac_artery_{sfx}", art, f.r(0.06, 1.2)),
                    Vessel(f"iliac_vena_{sfx}", vein, f.r(0.065, 1.2))]
    confluence = f.p(0.0, 0.0, 0.64) + np.array([0.0, vy - f.cy - f.r(0.3), 0.0])
    portal = np.array([confluence, f.p(-0.3, -0.1, 0.8)])
    splenic = np.array([confluence, f.p(0.25, 0.05, 0.66), f.p(0.5, 0.12, 0.72)])
    vessels += [Vessel("portal_vein_and_splenic_vein", portal, f.r(0.06, 1.2)),
                Vessel("portal_vein_and_splenic_vein", splenic, f.r(0.04, 1))]
    tissue = {"aorta": T.ARTERY, "inferior_vena_cava": T.VEIN, "portal_vein_and_splenic_vein": T.PORTAL}
    for v in vessels:
        code = tissue.get(v.name, T.ARTERY if "artery" in v.name else T.VEIN)
        paint_tube(c, v.points, v.radius, code, ids[v.name], where=_fat)
    return vessels


def _solid_organs(c: Canvas, f: Frame, ids: dict[str, int], spine_y: float, vessels: list[Vessel]) -> None:
    for side, sfx in ((-1, "right"), (1, "left")):
        w = 0.55 + (0.0 if side > 0 else -0.05)
        center = f.p(side * 0.46 * f.j(), 0.1, w)
        center[1] = spine_y - f.r(0.02)
        semi = (f.r(0.14, 2), f.r(0.21, 2), 0.18 * f.fz * f.j())
        paint_ellipsoid(c, center, semi, T.KIDNEY, ids[f"kidney_{sfx}"], angle=-side * 0.5, where=_fat,
                        bumps=f.bumps(0.5 * ORGAN_OUTLINE_BUMPS))
        sinus = center + np.array([-side * semi[0] * 0.45, 0.0, 0.0])
        paint_ellipsoid(c, sinus, (semi[0] * 0.35, semi[1] * 0.35, semi[2] * 0.45), T.RENAL_SINUS,
                        where=_inside(ids[f"kidney_{sfx}"]))
        adrenal = center + np.array([-side * f.r(0.06), -f.r(0.05), semi[2] + 0.05 * f.fz])
        paint_ellipsoid(c, adrenal, (f.r(0.03, 1), f.r(0.08, 1.5), 0.05 * f.fz), T.ADRENAL,
                        ids[f"adrenal_gland_{sfx}"], angle=side * 0.4, where=_fat)
    paint_ellipsoid(c, f.p(-0.38, -0.5, 0.68), (f.r(0.07, 1.5), f.r(0.11, 2), 0.08 * f.fz), T.GALLBLADDER,
                    ids["gallbladder"], where=_fat, bumps=f.bumps())
    paint_ellipsoid(c, f.p(-0.45, -0.05, 0.95), (0.5 * f.a * f.j(), 0.75 * f.b, 0.38 * f.fz * f.j()), T.LIVER,
                    ids["liver"], angle=0.2, where=_fat, bumps=f.bumps())
    # Left lobe reaching across the midline in front of the stomach.
    paint_ellipsoid(c, f.p(0.0, -0.42, 0.9), (0.32 * f.a, 0.2 * f.b, 0.14 * f.fz * f.j()), T.LIVER,
                    ids["liver"], angle=-0.25, where=_fat, bumps=f.bumps())
    paint_ellipsoid(c, f.p(0.62, 0.25, 0.86), (f.r(0.15), f.r(0.32), 0.2 * f.fz * f.j()), T.SPLEEN,
                    ids["spleen"], angle=0.6, where=_fat, bumps=f.bumps())
    splenic = next(v for v in vessels if v.name == "portal_vein_and_splenic_vein" and len(v.points) == 3)
    pancreas = splenic.points + np.array([0.0, -f.r(0.07), 0.0])
    pancreas[0] += np.array([-f.r(0.15), 0.0, -0.03 * f.fz])
    paint_tube(c, pancreas, f.r(0.08, 1.5), T.PANCREAS, ids["pancreas"], where=_fat)


def _hollow(c: Canvas, points, radius: float, wall: float, ts_id: int, content: int) -> None:
    paint_tube(c, points, radius, T.GI_WALL, ts_id, where=_fat)
    paint_tube(c, points, max(radius - wall, 0.5 * radius), content, ts_id, where=_inside(ts_id))


def _hollow_organs(c: Canvas, f: Frame, ids: dict[str, int], spine_y: float) -> None:
    wall = f.r(0.025, 1)
    # Stomach with an air-fluid level (gas rises anteriorly in a supine patient).
    sc = f.p(0.32, -0.35, 0.86)
    semi = np.array([f.r(0.26), f.r(0.2), 0.18 * f.fz]) * f.j()
    outline = f.bumps()
    paint_ellipsoid(c, sc, semi, T.GI_WALL, ids["stomach"], where=_fat, bumps=outline)
    paint_ellipsoid(c, sc, semi - wall, T.GI_FLUID, ids["stomach"], where=_inside(ids["stomach"]), bumps=outline)
    level = sc[1] - 0.35 * semi[1]
    found = ellipsoid_mask(c, sc, semi - wall, bumps=outline)
    if found is not None:
        box, mask = found
        c.paint(box, mask & (c.y[box[1]][None, :, None] < level), T.GAS, ids["stomach"],
                where=lambda t, s: (t == T.GI_FLUID) & (s == ids["stomach"]))
    ph = f.p(-0.12, -0.1, 0.6)
    duo = [ph + d for d in np.array([(0.1, -0.2, 0.12), (-0.2, -0.1, 0.06), (-0.25, 0.05, -0.04),
                                     (-0.05, 0.1, -0.1), (0.15, 0.02, -0.08)]) * np.array([f.s, f.s, f.fz])]
    _hollow(c, duo, f.r(0.07, 1.5), wall, ids["duodenum"], T.GI_FLUID)
    colon = [f.p(-0.64, 0.0, 0.08), f.p(-0.66, -0.05, 0.4), f.p(-0.55, -0.35, 0.62), f.p(0.0, -0.55, 0.6),
             f.p(0.55, -0.3, 0.66), f.p(0.68, 0.05, 0.45), f.p(0.64, 0.0, 0.15), f.p(0.3, -0.25, 0.03)]
    _hollow(c, colon, f.r(0.11, 2), wall, ids["colon"], T.STOOL)
    _gas_pockets(c, f, ids["colon"], 0.45)
    # Small-bowel loops: random walks kept inside the anterior mid-abdomen (the mesenteric space).
    lo, hi = np.array([-0.5, -0.7, 0.04]), np.array([0.5, 0.0, 0.6])
    for _ in range(12):
        uvw = f.rng.uniform(lo, hi)
        loop = [f.p(*uvw)]
        for _ in range(7):
            uvw = np.clip(uvw + f.rng.normal(0.0, 1.0, 3) * np.array([0.18, 0.15, 0.05]), lo, hi)
            loop.append(f.p(*uvw))
        _hollow(c, loop, f.r(0.07, 1.5), wall, ids["small_bowel"], T.GI_FLUID)
    _gas_pockets(c, f, ids["small_bowel"], 0.12)
    paint_ellipsoid(c, f.p(0.0, -0.3, 0.0), (f.r(0.25), f.r(0.2), 0.08 * f.fz), T.BLADDER,
                    ids["urinary_bladder"], where=_fat, bumps=f.bumps())


def _gas_pockets(c: Canvas, f: Frame, ts_id: int, fraction: float) -> None:
    """Turn a random `fraction` of a bowel's lumen into gas, in smooth blobs."""
    lumen = np.argwhere((c.ts[::4, ::4, ::4] == ts_id) & (c.tissue[::4, ::4, ::4] != T.GI_WALL))
    if len(lumen) == 0:
        return
    for _ in range(int(12 * fraction) + 1):
        k, j, i = lumen[f.rng.integers(len(lumen))] * 4
        center = np.array([c.x[min(i, len(c.x) - 1)], c.y[min(j, len(c.y) - 1)], c.z[min(k, len(c.z) - 1)]])
        paint_ellipsoid(c, center, np.full(3, f.r(0.09, 2)), T.GAS, ts_id,
                        where=lambda t, s: (s == ts_id) & (t != T.GI_WALL))
