"""Input checks before preparation: each failure names the file and says how to fix it.

Unreadable or corrupt files are already caught by `io.read_image`; these checks catch files
that read fine but cannot be what we need (an 8-bit image or MR instead of a CT in HU, a mask
on another grid, an empty mask, nodes painted outside the patient).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from LNSynthLib.errors import InputDataError
from LNSynthLib.volumes.geometry import Volume

CT_MIN_HU_REQUIRED = -100.0   # an abdominal CT always holds fat (~-100 HU) or air (~-1000 HU)
CT_MAX_HU_ALLOWED = 40000.0   # beyond any HU scale (even extended-range metal): raw detector/MR values
MAX_LN_OUTSIDE_FRACTION = 0.05


def check_ct(volume: Volume, path: str | Path | None) -> None:
    """Reject non-CT input: NaN/inf, no negative HU (8-bit images, MR, unrescaled raw values), absurd maxima."""
    arr = volume.array
    if not np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_:
        raise InputDataError(f"has voxel type {arr.dtype}, not a CT in Hounsfield units", path=path,
                             fix="give the CT image itself, not a mask or label map")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise InputDataError(f"contains {bad} NaN/infinite voxel values", path=path,
                             fix="re-export the CT from the scanner/PACS or Slicer; do not use a processed "
                                 "float image with undefined voxels")
    lo, hi = float(arr.min()), float(arr.max())
    if lo > CT_MIN_HU_REQUIRED:
        raise InputDataError(
            f"does not look like a CT in Hounsfield units (lowest value {lo:g}; a CT has air at about -1000 "
            f"and fat at about -100 HU)", path=path,
            fix="give a CT in HU: not an 8-bit/PNG-derived image, not an MR, and with the DICOM rescale "
                "slope/intercept applied (Slicer and SimpleITK apply it when loading the DICOM series)")
    if hi > CT_MAX_HU_ALLOWED:
        raise InputDataError(f"has values up to {hi:g}, beyond any Hounsfield scale", path=path,
                             fix="give a CT in HU (apply the DICOM rescale slope/intercept)")
    if hi - lo < 200:
        raise InputDataError(f"has almost no contrast (values {lo:g}..{hi:g})", path=path,
                             fix="give the full CT volume, not a constant or thresholded image")


def check_same_geometry(a: Volume, b: Volume, path_a: str | Path | None, path_b: str | Path | None) -> None:
    """Both volumes must lie on the same voxel grid (shape, spacing, origin, direction)."""
    ga, gb = a.geometry, b.geometry
    if a.shape != b.shape or not ga.isclose(gb):
        details = []
        if a.shape != b.shape:
            details.append(f"size (z,y,x) {a.shape} vs {b.shape}")
        if not np.allclose(ga.spacing, gb.spacing, rtol=1e-4, atol=1e-4):
            details.append(f"spacing {ga.spacing} vs {gb.spacing}")
        if not np.allclose(ga.origin, gb.origin, atol=1e-3 * min(ga.spacing)):
            details.append(f"origin {ga.origin} vs {gb.origin}")
        if not np.allclose(ga.direction, gb.direction, atol=1e-4):
            details.append("direction differs")
        raise InputDataError(
            f"is not on the same voxel grid as {path_b}: {'; '.join(details)}", path=path_a,
            fix="export the mask from the same CT volume (in Slicer: Export to label map with the CT as "
                "reference geometry) or resample it onto the CT grid with nearest-neighbour interpolation")


def check_ln_mask(ln: Volume, body_or_anatomy: Volume | np.ndarray, path: str | Path | None) -> None:
    """The LN mask must hold at least one node, and its nodes must lie inside the body.

    `body_or_anatomy` is a body mask or a 14-label anatomy map: non-zero means inside the
    body (label 0 is `air`).
    """
    mask = np.asarray(ln.array) > 0
    count = int(mask.sum())
    if count == 0:
        raise InputDataError("lymph-node mask is empty (no voxel above 0)", path=path,
                             fix="paint at least one lymph node (Segment Editor) and export the mask again, "
                                 "or check that the right file was given")
    inside = np.asarray(body_or_anatomy.array if isinstance(body_or_anatomy, Volume) else body_or_anatomy) > 0
    if inside.shape != mask.shape:
        raise InputDataError(f"has size {mask.shape}, the anatomy/body map has {inside.shape}", path=path,
                             fix="use a lymph-node mask on the CT's voxel grid")
    outside = int((mask & ~inside).sum())
    if outside > MAX_LN_OUTSIDE_FRACTION * count:
        raise InputDataError(
            f"{outside} of {count} lymph-node voxels ({100 * outside / count:.0f}%) lie outside the body "
            f"(in air)", path=path,
            fix="the mask is probably misaligned with the CT (wrong file, flipped or shifted export); "
                "re-export it from the same CT, or erase the nodes painted outside the patient")
