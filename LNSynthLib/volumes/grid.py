"""One grid rule for label maps (anatomy, TotalSegmentator output, LN masks) given with a CT.

A label map must describe the CT's voxels. Three cases:
- the same grid: used as it is;
- the same voxels stored in another axis order or direction (e.g. TotalSegmentator run on a
  DICOM folder writes its NIfTI with y flipped relative to the series as SimpleITK reads it:
  same shape, other origin and direction): reoriented exactly, by permuting and flipping the
  array, with no interpolation;
- anything else is refused with the grid check's error, unless the caller explicitly asked to
  resample labels onto the CT (nearest neighbour, `resample=True` / `--resample-labels`).
`resample_onto` is also the one "this volume on that grid" resampler (paste-back uses it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from LNSynthLib.errors import InputDataError
from LNSynthLib.volumes.checks import check_same_geometry
from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.io import to_sitk

INTERPOLATIONS = {"nearest": sitk.sitkNearestNeighbor, "linear": sitk.sitkLinear}
RESAMPLE_FIX = "or pass --resample-labels to resample it onto the CT with nearest-neighbour interpolation"
_TOL_VOXELS = 1e-3


def same_grid(a: Volume, b: Volume) -> bool:
    return a.shape == b.shape and a.geometry.isclose(b.geometry)


def _index_to_physical(geometry: Geometry) -> np.ndarray:
    """3×3 matrix from a continuous (x, y, z) index step to an LPS displacement."""
    return geometry.direction_matrix * np.asarray(geometry.spacing)[None, :]


def exact_reorientation(moving: Volume, reference: Volume) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]] | None:
    """How `moving`'s voxels map onto `reference`'s when both grids hold the same voxel centres.

    Returns (axes, flips) in array (z, y, x) order such that
    `np.flip(moving.array.transpose(axes), [a for a in range(3) if flips[a]])` is the array on the
    reference grid; None when no axis permutation/flip maps one grid exactly onto the other.
    """
    to_ref = np.linalg.inv(_index_to_physical(reference.geometry))
    matrix = to_ref @ _index_to_physical(moving.geometry)            # moving index -> reference index (xyz)
    shift = to_ref @ (np.asarray(moving.geometry.origin) - np.asarray(reference.geometry.origin))
    signed = np.round(matrix)
    if not np.allclose(matrix, signed, atol=_TOL_VOXELS) or not np.allclose(shift, np.round(shift), atol=_TOL_VOXELS):
        return None
    if not (np.abs(signed).sum(0) == 1).all() or not (np.abs(signed).sum(1) == 1).all():
        return None
    size_ref = reference.shape[::-1]   # (x, y, z)
    size_mov = moving.shape[::-1]
    source_xyz, flip_xyz = [], []
    for a in range(3):
        b = int(np.flatnonzero(signed[a])[0])
        sign, start = int(signed[a, b]), int(np.round(shift[a]))
        if size_mov[b] != size_ref[a] or start != (0 if sign > 0 else size_ref[a] - 1):
            return None
        source_xyz.append(b)
        flip_xyz.append(sign < 0)
    # Array axis k (z, y, x) is xyz axis 2 - k.
    axes = tuple(2 - source_xyz[2 - k] for k in range(3))
    flips = tuple(flip_xyz[2 - k] for k in range(3))
    return axes, flips  # type: ignore[return-value]


def reorient_onto(moving: Volume, reference: Volume) -> Volume | None:
    """`moving` as an array on `reference`'s grid by permuting/flipping axes only, or None if impossible."""
    found = exact_reorientation(moving, reference)
    if found is None:
        return None
    axes, flips = found
    array = np.asarray(moving.array).transpose(axes)
    array = np.flip(array, [k for k in range(3) if flips[k]])
    return Volume(np.ascontiguousarray(array), reference.geometry)


def resample_onto(volume: Volume, reference: Volume, interpolation: str = "nearest",
                  default_value: float = 0.0) -> Volume:
    """`volume` resampled onto `reference`'s grid (physical positions kept).

    `nearest` keeps the voxel type (label maps); `linear` works in float32 (images, weights).
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {tuple(INTERPOLATIONS)}, got {interpolation!r}")
    array = np.asarray(volume.array)
    if interpolation == "linear" or array.dtype == np.bool_:
        array = array.astype(np.float32)
    moving = to_sitk(Volume(array, volume.geometry))
    ref = to_sitk(Volume(np.zeros(reference.shape, np.uint8), reference.geometry))
    out = sitk.Resample(moving, ref, sitk.Transform(), INTERPOLATIONS[interpolation], float(default_value),
                        moving.GetPixelID())
    return Volume(sitk.GetArrayFromImage(out), reference.geometry)


def labels_onto(labels: Volume, reference: Volume, path: str | Path | None, reference_path: str | Path | None,
                *, resample: bool = False, refusal_fix: str = RESAMPLE_FIX) -> Volume:
    """A label map on the reference (CT) grid by the grid rule above; refuses what it cannot map exactly.

    `refusal_fix` ends the refusal's Fix (commands without `--resample-labels` say what else to do).
    """
    if same_grid(labels, reference):
        return Volume(labels.array, reference.geometry)
    reoriented = reorient_onto(labels, reference)
    if reoriented is not None:
        return reoriented
    if resample:
        return resample_onto(labels, reference, "nearest")
    try:
        check_same_geometry(labels, reference, path, reference_path)
    except InputDataError as exc:
        raise InputDataError(exc.problem, path=exc.path, fix=f"{exc.fix}; {refusal_fix}") from None
    raise AssertionError("grids differ but check_same_geometry accepted them")  # isclose and the check agree
