"""Physical geometry that travels with every array.

Conventions (the only place that defines them):
- Arrays are numpy in SimpleITK order `(z, y, x)` = `(k, j, i)`.
- `spacing`, `origin` and `direction` are in SimpleITK/ITK order `(x, y, z)` and LPS
  physical space; `direction` is the row-major 3×3 matrix as a 9-tuple.
- Slicer's RAS is handled only in the MRML bridge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Geometry:
    """Voxel grid in physical space (LPS, millimetres)."""

    spacing: tuple[float, float, float]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        object.__setattr__(self, "origin", tuple(float(o) for o in self.origin))
        object.__setattr__(self, "direction", tuple(float(d) for d in self.direction))
        if len(self.spacing) != 3 or len(self.origin) != 3 or len(self.direction) != 9:
            raise ValueError("Geometry needs 3 spacings, 3 origin values and a 9-value direction")
        if min(self.spacing) <= 0:
            raise ValueError(f"spacing must be positive, got {self.spacing}")

    @property
    def direction_matrix(self) -> np.ndarray:
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    def index_to_physical(self, ijk: np.ndarray) -> np.ndarray:
        """Map continuous indices `(i, j, k)` (x, y, z order, shape (..., 3)) to LPS points."""
        ijk = np.asarray(ijk, dtype=float)
        return np.asarray(self.origin) + (ijk * np.asarray(self.spacing)) @ self.direction_matrix.T

    def physical_to_index(self, points: np.ndarray) -> np.ndarray:
        """Inverse of `index_to_physical` (continuous indices, x, y, z order)."""
        points = np.asarray(points, dtype=float)
        local = (points - np.asarray(self.origin)) @ np.linalg.inv(self.direction_matrix).T
        return local / np.asarray(self.spacing)

    def shifted(self, start_zyx: tuple[int, int, int]) -> Geometry:
        """Geometry of a crop that starts at array index `start_zyx` of this grid."""
        start_xyz = np.asarray(start_zyx[::-1], dtype=float)
        return Geometry(self.spacing, tuple(self.index_to_physical(start_xyz)), self.direction)

    def isclose(self, other: Geometry, tol: float = 1e-4) -> bool:
        return (np.allclose(self.spacing, other.spacing, atol=tol, rtol=tol)
                and np.allclose(self.origin, other.origin, atol=max(tol, 1e-3 * min(self.spacing)))
                and np.allclose(self.direction, other.direction, atol=tol))


@dataclass
class Volume:
    """An array with its geometry; `array` is `(z, y, x)`."""

    array: np.ndarray
    geometry: Geometry

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)  # type: ignore[return-value]

    @property
    def voxel_volume_mm3(self) -> float:
        sx, sy, sz = self.geometry.spacing
        return sx * sy * sz
