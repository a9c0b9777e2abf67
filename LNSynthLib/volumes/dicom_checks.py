"""DICOM series checks: a volume needs several slices, evenly spaced along the slice normal.

SimpleITK reads a series with a missing slice as if it were uniform (the spacing becomes the
average gap), so every node and organ below the gap would sit at a wrong position; a one-slice
series reads as a 3D volume one voxel thick. Both are refused before anything is built on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from LNSynthLib.errors import InputDataError

# Slice gaps may differ from the typical gap by this fraction (rounding in the headers), no more.
SLICE_GAP_TOLERANCE = 0.05
MIN_SLICES = 2


def _position_and_normal(file: str) -> tuple[np.ndarray, np.ndarray] | None:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(file)
    reader.ReadImageInformation()
    keys = set(reader.GetMetaDataKeys())
    if "0020|0032" not in keys or "0020|0037" not in keys:
        return None
    try:
        position = np.array([float(v) for v in reader.GetMetaData("0020|0032").split("\\")])
        orientation = np.array([float(v) for v in reader.GetMetaData("0020|0037").split("\\")])
    except ValueError:
        return None
    if position.size != 3 or orientation.size != 6:
        return None
    return position, np.cross(orientation[:3], orientation[3:])


def check_slice_positions(folder: str | Path, files: Sequence[str]) -> None:
    """Refuse a series of fewer than MIN_SLICES slices, or with a missing/duplicate slice (uneven gaps)."""
    if len(files) < MIN_SLICES:
        raise InputDataError(f"DICOM series has {len(files)} slice(s), a 3D CT volume is needed", path=folder,
                             fix="export the whole CT series (all slices) into the folder")
    found = [_position_and_normal(f) for f in files]
    if any(item is None for item in found):
        return  # no geometry tags to judge; the reader's own checks apply
    normal = found[0][1]
    heights = np.sort([float(np.dot(pos, normal)) for pos, _ in found])
    gaps = np.diff(heights)
    typical = float(np.median(gaps))
    if typical <= 0 or np.any(gaps <= 0.5 * typical):
        raise InputDataError("DICOM series has slices at the same position (duplicates or two series mixed)",
                             path=folder, fix="put exactly one CT series into the folder")
    uneven = np.abs(gaps - typical) > SLICE_GAP_TOLERANCE * typical
    if np.any(uneven):
        where = int(np.argmax(uneven))
        raise InputDataError(
            f"DICOM slices are not evenly spaced: gap of {gaps[where]:.3g} mm after slice {where + 1} where the "
            f"others are {typical:.3g} mm (a missing slice?)", path=folder,
            fix="export the complete series again; a series with missing slices cannot be read as one volume")
