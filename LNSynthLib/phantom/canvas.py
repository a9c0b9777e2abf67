"""Painting primitives for the phantom: shapes drawn only inside their bounding boxes.

Everything is in millimetres relative to the volume centre (x = patient left, y = posterior,
z = superior, i.e. LPS with an identity direction), so the same anatomy description works for
any shape and spacing; evaluating each shape only in its box keeps a 512×512×300 phantom cheap.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Box = tuple[slice, slice, slice]


class Canvas:
    """Two label maps on one grid: TotalSegmentator ids (`ts`) and phantom tissue codes (`tissue`).

    `hu_overrides` holds (box, mask, HU) of structures whose mean HU is drawn per structure (each
    node, each hard negative) instead of per tissue; the renderer applies them in order.
    """

    def __init__(self, shape_zyx: tuple[int, int, int], spacing_xyz: tuple[float, float, float]) -> None:
        self.shape = tuple(int(s) for s in shape_zyx)
        self.spacing = tuple(float(s) for s in spacing_xyz)
        nz, ny, nx = self.shape
        sx, sy, sz = self.spacing
        self.x = ((np.arange(nx) - (nx - 1) / 2) * sx).astype(np.float32)
        self.y = ((np.arange(ny) - (ny - 1) / 2) * sy).astype(np.float32)
        self.z = ((np.arange(nz) - (nz - 1) / 2) * sz).astype(np.float32)
        self.extent_xyz = (nx * sx, ny * sy, nz * sz)
        self.ts = np.zeros(self.shape, dtype=np.uint8)
        self.tissue = np.zeros(self.shape, dtype=np.uint8)
        self.hu_overrides: list[tuple[Box, np.ndarray, float]] = []

    @property
    def size_factor(self) -> float:
        """1 on real-size grids; below `REAL_SIZE_BODY_HALF_WIDTH_MM` the body's scale (nodes shrink with it)."""
        from LNSynthLib.phantom.parameters import BODY_HALF_WIDTH_FRACTIONS, REAL_SIZE_BODY_HALF_WIDTH_MM

        fx, fy, _ = self.extent_xyz
        body = min(BODY_HALF_WIDTH_FRACTIONS[0] * fx, BODY_HALF_WIDTH_FRACTIONS[1] * fy)
        return min(1.0, body / REAL_SIZE_BODY_HALF_WIDTH_MM)

    @property
    def origin_xyz(self) -> tuple[float, float, float]:
        return (float(self.x[0]), float(self.y[0]), float(self.z[0]))

    def box(self, lo_xyz: np.ndarray, hi_xyz: np.ndarray) -> tuple[Box, np.ndarray, np.ndarray, np.ndarray] | None:
        """Index box covering [lo, hi] mm and its broadcastable coordinate arrays (Z, Y, X)."""
        sl = []
        for axis, lo, hi in ((self.z, lo_xyz[2], hi_xyz[2]), (self.y, lo_xyz[1], hi_xyz[1]),
                             (self.x, lo_xyz[0], hi_xyz[0])):
            a = int(np.searchsorted(axis, lo, side="left"))
            b = int(np.searchsorted(axis, hi, side="right"))
            if b <= a:
                return None
            sl.append(slice(a, b))
        box = (sl[0], sl[1], sl[2])
        return box, self.z[box[0]][:, None, None], self.y[box[1]][None, :, None], self.x[box[2]][None, None, :]

    def paint(self, box: Box, mask: np.ndarray, tissue: int, ts: int | None = None,
              where: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
              hu: float | None = None) -> np.ndarray:
        """Set `tissue` (and TotalSegmentator id `ts` if given) on `mask` inside `box`; return the painted mask.

        `where(tissue_view, ts_view)` restricts painting, e.g. to voxels that are still fat, so
        that organs painted earlier keep their place. `hu` gives these voxels their own mean HU.
        """
        t_view, s_view = self.tissue[box], self.ts[box]
        if where is not None:
            mask = mask & where(t_view, s_view)
        t_view[mask] = tissue
        if ts is not None:
            s_view[mask] = ts
        if hu is not None:
            self.hu_overrides.append((box, mask, float(hu)))
        return mask


Bumps = tuple[float, np.ndarray]   # (relative amplitude, 4 phases): a smooth, organic outline


def _bumps(bumps: Bumps | None, u, v, w=None):  # noqa: ANN001, ANN202
    """1 + a low-frequency modulation of the radius in normalised coordinates (1 where `bumps` is None)."""
    if bumps is None:
        return 1.0
    amp, ph = bumps
    second = np.sin(3.1 * v + ph[2]) * np.cos(1.3 * u + ph[3]) if w is None else \
        np.sin(2.9 * w + ph[2]) * np.cos(2.1 * u + ph[3])
    return 1.0 + 0.5 * amp * (np.sin(2.3 * u + ph[0]) * np.cos(1.7 * v + ph[1]) + second)


def ellipsoid_mask(canvas: Canvas, center: np.ndarray, semi: np.ndarray, angle: float = 0.0,
                   bumps: Bumps | None = None):
    """Box and mask of an ellipsoid, optionally rotated by `angle` (radians) in the axial plane and bumpy."""
    center, semi = np.asarray(center, float), np.asarray(semi, float)
    reach = np.array([max(semi[0], semi[1]), max(semi[0], semi[1]), semi[2]]) if angle else semi
    if bumps is not None:
        reach = reach * (1.0 + bumps[0])
    found = canvas.box(center - reach, center + reach)
    if found is None:
        return None
    box, zz, yy, xx = found
    dx, dy, dz = xx - center[0], yy - center[1], zz - center[2]
    if angle:
        c, s = np.cos(angle), np.sin(angle)
        dx, dy = c * dx + s * dy, -s * dx + c * dy
    u, v, w = dx / semi[0], dy / semi[1], dz / semi[2]
    mask = u ** 2 + v ** 2 + w ** 2 <= _bumps(bumps, u, v, w) ** 2
    return box, mask


def paint_ellipsoid(canvas: Canvas, center, semi, tissue: int, ts: int | None = None, angle: float = 0.0,
                    where=None, bumps: Bumps | None = None) -> None:
    found = ellipsoid_mask(canvas, center, semi, angle, bumps)
    if found is not None:
        canvas.paint(found[0], found[1], tissue, ts, where)


def paint_cylinder(canvas: Canvas, center_xy, semi_xy, z_range, tissue: int, ts: int | None = None,
                   where=None, bumps: Bumps | None = None) -> None:
    """Elliptic cylinder along z (body outline, wall layers), optionally with a bumpy outline."""
    cx, cy = center_xy
    grow = 1.0 + (bumps[0] if bumps is not None else 0.0)
    a, b = semi_xy
    found = canvas.box(np.array([cx - a * grow, cy - b * grow, z_range[0]]),
                       np.array([cx + a * grow, cy + b * grow, z_range[1]]))
    if found is None:
        return
    box, zz, yy, xx = found
    u, v = (xx - cx) / a, (yy - cy) / b
    mask = u ** 2 + v ** 2 <= _bumps(bumps, u, v) ** 2
    canvas.paint(box, np.broadcast_to(mask, (zz.shape[0],) + mask.shape[1:]).copy(), tissue, ts, where)


def tube_masks(canvas: Canvas, points, radius: float):  # noqa: ANN201
    """(box, mask) of each capsule of a tube of `radius` mm along a polyline, each in its own box."""
    pts = np.asarray(points, dtype=float)
    for p, q in zip(pts[:-1], pts[1:], strict=True):
        lo, hi = np.minimum(p, q) - radius, np.maximum(p, q) + radius
        found = canvas.box(lo, hi)
        if found is None:
            continue
        box, zz, yy, xx = found
        d = q - p
        length2 = float(d @ d) or 1e-9
        t = ((xx - p[0]) * d[0] + (yy - p[1]) * d[1] + (zz - p[2]) * d[2]) / length2
        t = np.clip(t, 0.0, 1.0)
        dist2 = (xx - p[0] - t * d[0]) ** 2 + (yy - p[1] - t * d[1]) ** 2 + (zz - p[2] - t * d[2]) ** 2
        yield box, dist2 <= radius * radius


def paint_tube(canvas: Canvas, points, radius: float, tissue: int, ts: int | None = None, where=None,
               hu: float | None = None) -> None:
    """Tube of `radius` mm along a polyline (vessels, bowel): one capsule per segment, each in its own box."""
    for box, mask in tube_masks(canvas, points, radius):
        canvas.paint(box, mask, tissue, ts, where, hu)
