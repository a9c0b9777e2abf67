"""Paper preprocessing: crop the LN region with a margin, resample to 1 mm, window HU to [-1, 1].

All parameters are explicit (`PreprocessSettings`); every operation keeps physical positions,
so a node's LPS centroid is the same before and after cropping and resampling.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

from LNSynthLib.errors import InputDataError
from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.io import from_sitk, to_sitk

Box = tuple[slice, slice, slice]
DEFAULT_WINDOW = (-120.0, 240.0)
TRAIN_MARGIN_MM = 100.0   # paper 000 §4: LN-region crop margin per axis for training cases ...
TEST_MARGIN_MM = 50.0     # ... and for test cases; every other default refers to these two


@dataclass(frozen=True)
class PreprocessSettings:
    """Paper 000 §4: 10 cm margin per axis for training (5 cm at test time), 1.0 mm, HU [-120, 240]."""

    margin_mm: float = TRAIN_MARGIN_MM
    spacing: float = 1.0
    window: tuple[float, float] = DEFAULT_WINDOW

    @classmethod
    def train(cls, **overrides: Any) -> PreprocessSettings:
        return cls(**{"margin_mm": TRAIN_MARGIN_MM, **overrides})

    @classmethod
    def test(cls, **overrides: Any) -> PreprocessSettings:
        return cls(**{"margin_mm": TEST_MARGIN_MM, **overrides})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ln_region_box(ln: Volume, margin_mm: float) -> Box:
    """Bounding box (z, y, x slices) of all LN voxels grown by `margin_mm` per axis, clamped to the volume."""
    coords = np.nonzero(np.asarray(ln.array) > 0)
    if len(coords[0]) == 0:
        raise InputDataError("lymph-node mask is empty, so there is no LN region to crop",
                             fix="paint at least one lymph node into the mask")
    spacing_zyx = ln.geometry.spacing[::-1]
    box = []
    for c, s, n in zip(coords, spacing_zyx, ln.shape, strict=True):
        pad = int(np.ceil(margin_mm / s - 1e-9))
        box.append(slice(max(0, int(c.min()) - pad), min(n, int(c.max()) + 1 + pad)))
    return (box[0], box[1], box[2])


def crop(volume: Volume, box: Box, copy: bool = True) -> Volume:
    """Sub-volume with the geometry of its first voxel (physical positions unchanged).

    `copy=False` gives a view for read-only use while the full volume is alive anyway (no second
    CT-sized array at the memory peak); a copy lets the full volume be freed.
    """
    start = tuple(int(s.start or 0) for s in box)
    array = volume.array[box]
    return Volume(np.ascontiguousarray(array) if copy else array, volume.geometry.shifted(start))


def resampled_geometry(geometry: Geometry, shape_zyx: tuple[int, int, int],
                       spacing_xyz: tuple[float, float, float]) -> tuple[Geometry, tuple[int, int, int]]:
    """Grid with `spacing_xyz` covering the same physical box (outer voxel edges aligned)."""
    old = np.asarray(geometry.spacing)
    new = np.asarray(spacing_xyz, dtype=float)
    size_xyz = np.maximum(1, np.round(np.asarray(shape_zyx[::-1]) * old / new)).astype(int)
    # Shift the first voxel centre so the first voxel's outer edge stays where it was.
    origin = geometry.index_to_physical((new / old - 1.0) / 2.0)
    return Geometry(tuple(new), tuple(origin), geometry.direction), tuple(int(s) for s in size_xyz[::-1])


def resample(volume: Volume, spacing_xyz: tuple[float, float, float] = (1.0, 1.0, 1.0),
             interpolation: str = "linear", default_value: float | None = None) -> Volume:
    """Resample onto an isotropic (or any) spacing; `nearest` for label maps, `linear` for CT.

    Outside the input (at most half a voxel at the edges) takes `default_value`, by default
    the volume's minimum (air for a CT, background for a label map).
    """
    if interpolation not in ("linear", "nearest"):
        raise ValueError(f"interpolation must be 'linear' or 'nearest', got {interpolation!r}")
    spacing_xyz = tuple(float(s) for s in spacing_xyz)
    if np.allclose(spacing_xyz, volume.geometry.spacing, rtol=1e-6, atol=1e-6):
        return Volume(volume.array.copy(), volume.geometry)
    geometry, shape = resampled_geometry(volume.geometry, volume.shape, spacing_xyz)
    image = to_sitk(volume)
    pixel = image.GetPixelID()
    if interpolation == "linear" and not np.issubdtype(volume.array.dtype, np.floating):
        # Integer HU (int16 CTs) come out as float32: ITK interpolates in double and casts the result,
        # so no float32 copy of the input is needed (same values as casting first).
        pixel = sitk.sitkFloat32
    fill = float(volume.array.min()) if default_value is None else float(default_value)
    out = sitk.Resample(image, list(shape[::-1]), sitk.Transform(),
                        sitk.sitkLinear if interpolation == "linear" else sitk.sitkNearestNeighbor,
                        geometry.origin, geometry.spacing, geometry.direction, fill, pixel)
    del image
    return from_sitk(out)


def hu_to_unit(arr, window: tuple[float, float] = DEFAULT_WINDOW):  # noqa: ANN001, ANN201
    """Clip HU to `window` and scale linearly to [-1, 1] (numpy arrays or torch tensors)."""
    lo, hi = float(window[0]), float(window[1])
    clipped = arr.clamp(lo, hi) if hasattr(arr, "clamp") else np.clip(arr, lo, hi)
    return (clipped - lo) * (2.0 / (hi - lo)) - 1.0


def unit_to_hu(arr, window: tuple[float, float] = DEFAULT_WINDOW):  # noqa: ANN001, ANN201
    """Inverse of `hu_to_unit` (exact for HU inside the window)."""
    lo, hi = float(window[0]), float(window[1])
    return (arr + 1.0) * ((hi - lo) / 2.0) + lo
