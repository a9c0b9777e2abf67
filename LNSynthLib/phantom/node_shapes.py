"""Lymph-node sizes and shapes: real volumes, lobulated or vessel-aligned, sized to a drawn volume.

A node is a union of 1–4 rotated ellipsoids ("lobes"). Its volume is drawn from a log-normal
truncated to the range of real abdominal nodes (`parameters`), multiplied by the cube of the
phantom's size factor (1 on real-size grids, smaller for small test phantoms), and the shape is
scaled as a whole to that volume. Only when the result would be narrower than the short-axis
floor is it reduced to its main lobe and that scaled up to the floor (so small or coarse phantoms
still hold visible nodes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from LNSynthLib.phantom import parameters as P

_GRID = 28   # points per axis used to measure a shape's volume (≈ 1 % accuracy)


@dataclass
class NodeShape:
    """Lobes in millimetres relative to the node centre: offsets (k, 3), semi-axes (k, 3), rotations (k, 3, 3)."""

    offsets: np.ndarray
    semis: np.ndarray
    rotations: np.ndarray
    _points: np.ndarray | None = field(default=None, repr=False, compare=False)
    _bounds: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def short_axis_mm(self) -> float:
        return 2.0 * float(self.semis[0].min())

    def scaled(self, factor: float) -> NodeShape:
        return NodeShape(self.offsets * factor, self.semis * factor, self.rotations)

    def reach_mm(self) -> float:
        """Radius of a sphere around the centre that holds the whole node."""
        return float(np.max(np.linalg.norm(self.offsets, axis=1) + self.semis.max(axis=1)))

    def inside(self, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray, grow_mm: float = 0.0) -> np.ndarray:
        """Boolean mask of points (broadcast arrays of mm offsets from the centre) inside the node grown by `grow_mm`."""
        out = np.zeros(np.broadcast_shapes(dx.shape, dy.shape, dz.shape), dtype=bool)
        for off, semi, rot in zip(self.offsets, self.semis + grow_mm, self.rotations, strict=True):
            px, py, pz = dx - off[0], dy - off[1], dz - off[2]
            # Coordinates in the lobe's own axes (rows of `rot` are its axis directions).
            u = rot[0, 0] * px + rot[0, 1] * py + rot[0, 2] * pz
            v = rot[1, 0] * px + rot[1, 1] * py + rot[1, 2] * pz
            w = rot[2, 0] * px + rot[2, 1] * py + rot[2, 2] * pz
            out |= (u / semi[0]) ** 2 + (v / semi[1]) ** 2 + (w / semi[2]) ** 2 <= 1.0
        return out

    def sample_points(self) -> np.ndarray:
        """(n, 3) x/y/z mm offsets of a regular grid's points that lie inside the node (volume, extents)."""
        if self._points is None:
            r = self.reach_mm()
            ax = (np.arange(_GRID) + 0.5) / _GRID * 2 * r - r
            zz, yy, xx = np.nonzero(self.inside(ax[None, None, :], ax[None, :, None], ax[:, None, None]))
            self._points = np.stack([ax[xx], ax[yy], ax[zz]], axis=1)
        return self._points

    def bounds_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """Tight x/y/z box (lo, hi) in mm around the centre that holds the node."""
        if self._bounds is None:
            pts, cell = self.sample_points(), 2 * self.reach_mm() / _GRID
            self._bounds = (pts.min(axis=0) - cell, pts.max(axis=0) + cell)
        return self._bounds

    def volume_mm3(self) -> float:
        r = self.reach_mm()
        return len(self.sample_points()) * (2 * r / _GRID) ** 3

    def extent_along(self, direction: np.ndarray) -> float:
        """How far (mm) the node reaches from its centre along a unit `direction`."""
        pts = self.sample_points()
        return float((pts @ direction).max()) if len(pts) else 0.0


def draw_volume_cm3(rng: np.random.Generator) -> float:
    """One real node volume: log-normal around the median, redrawn until inside the real range."""
    lo, hi = P.NODE_VOLUME_RANGE_CM3
    while True:
        v = float(P.NODE_VOLUME_MEDIAN_CM3 * np.exp(rng.normal(0.0, P.NODE_VOLUME_LOG_SD)))
        if lo <= v <= hi:
            return v


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def perpendicular_pair(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors perpendicular to the unit `axis` and to each other."""
    helper = np.array([0.0, 0.0, 1.0]) if abs(axis[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = _cross(axis, helper)
    u /= np.linalg.norm(u)
    return u, _cross(axis, u)


def _rotation(rng: np.random.Generator, first_axis: np.ndarray | None) -> np.ndarray:
    """Random orthonormal frame (rows = axes); the third row is `first_axis` when given (the long axis)."""
    if first_axis is None:
        q, r = np.linalg.qr(rng.normal(size=(3, 3)))
        return (q * np.sign(np.diag(r))).T
    w = first_axis / np.linalg.norm(first_axis)
    u, v = perpendicular_pair(w)
    theta = rng.uniform(0, 2 * np.pi)
    u, v = np.cos(theta) * u + np.sin(theta) * v, -np.sin(theta) * u + np.cos(theta) * v
    return np.stack([u, v, w])


def draw_shape(rng: np.random.Generator, volume_mm3: float, vessel_direction: np.ndarray,
               min_short_axis_mm: float) -> NodeShape:
    """A lobulated and/or vessel-aligned node of `volume_mm3` (raised to `min_short_axis_mm` if narrower)."""
    along = rng.uniform() < P.ALONG_VESSEL_FRACTION
    elong = rng.uniform(*(P.ALONG_VESSEL_ELONGATION if along else P.NODE_ELONGATION))
    # Semi-axes (short, middle, long): the long axis is the frame's third row.
    main = np.array([1.0, rng.uniform(1.0, max(1.0, elong * P.MIDDLE_AXIS_FRACTION)), elong])
    rot = _rotation(rng, vessel_direction if along else None)
    offsets, semis, rots = [np.zeros(3)], [main], [rot]
    if rng.uniform() < P.LOBULATED_FRACTION:
        for _ in range(int(rng.integers(P.LOBE_COUNT_RANGE[0], P.LOBE_COUNT_RANGE[1] + 1)) - 1):
            d = rng.normal(size=3)
            d /= np.linalg.norm(d)
            local = d * main * rng.uniform(*P.LOBE_OFFSET_RANGE)   # offset in the main lobe's frame
            offsets.append(rot.T @ local)
            semis.append(main * rng.uniform(*P.LOBE_SIZE_RANGE, size=3))
            rots.append(_rotation(rng, None))
    shape = NodeShape(np.array(offsets), np.array(semis), np.array(rots))
    shape = shape.scaled((volume_mm3 / shape.volume_mm3()) ** (1.0 / 3.0))
    if shape.short_axis_mm < min_short_axis_mm:
        # At the floor a node is a few voxels wide: lobes would not show, only make it bigger. One lobe.
        main = NodeShape(shape.offsets[:1] * 0.0, shape.semis[:1], shape.rotations[:1])
        shape = main.scaled(max(1.0, min_short_axis_mm / main.short_axis_mm))
    return shape


def hilum(rng: np.random.Generator, shape: NodeShape) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(offset, semi-axes, rotation) of a fatty hilum indenting the main lobe, or None (no hilum)."""
    if rng.uniform() >= P.HILUM_FRACTION:
        return None
    main, rot = shape.semis[0], shape.rotations[0]
    side = rng.choice([-1.0, 1.0])
    # Off-centre along the short axis, reaching the surface: fat entering at the hilum.
    local = np.array([side * main[0] * P.HILUM_OFFSET, 0.0, 0.0])
    return rot.T @ local, main * rng.uniform(*P.HILUM_SIZE_RANGE, size=3), rot
