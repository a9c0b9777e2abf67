"""Anatomy map from an existing label file: a TotalSegmentator `total` output or a ready 14-label map."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from LNSynthLib.anatomy.groups import BODY, NUM_LABELS, totalseg_to_anatomy
from LNSynthLib.errors import InputDataError
from LNSynthLib.volumes.checks import check_same_geometry
from LNSynthLib.volumes.geometry import Volume

SOURCES = ("totalseg", "anatomy14")


def guess_source(label_volume: Volume, path: str | Path | None = None) -> str:
    """`anatomy14` when every value is a valid anatomy label (0..13), `totalseg` for a TotalSegmentator map.

    A map with values >= 14 whose largest non-zero label is 1 (`body`: most of an anatomy map, the
    small spleen in TotalSegmentator's numbering) is a 14-label map with stray values; re-reading it
    as TotalSegmentator ids would scramble every organ, so it is refused instead of guessed.
    """
    labels = np.asarray(label_volume.array)
    if labels.size == 0 or int(labels.max()) < NUM_LABELS:
        return "anatomy14"
    values, counts = np.unique(labels[labels != 0], return_counts=True)
    if values[np.argmax(counts)] == BODY:
        stray = [v for v in values.tolist() if v >= NUM_LABELS or v < 0]
        shown = ", ".join(f"{v:g}" for v in stray[:8]) + (", ..." if len(stray) > 8 else "")
        raise InputDataError(
            f"looks like a 14-label anatomy map (mostly label 1, body) but also holds value(s) {shown}, outside "
            f"0..{NUM_LABELS - 1}; it is not clear whether it is a 14-label map or a TotalSegmentator map",
            path=path, fix="fix the stray values (labels must be 0..13), or state the kind with --anatomy-source "
                           "anatomy14 / totalseg (--labels-source for `lnsynth anatomy`)")
    return "totalseg"


def anatomy_from_labels(label_volume: Volume, ct: Volume, source: str = "totalseg", *,
                        path: str | Path | None = None, ct_path: str | Path | None = None) -> Volume:
    """14-label anatomy (uint8) on the CT grid from a TotalSegmentator output or an existing 14-label map."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    check_same_geometry(label_volume, ct, path, ct_path)
    labels = np.asarray(label_volume.array)
    if np.issubdtype(labels.dtype, np.floating):
        if not np.all(np.isfinite(labels)) or not np.array_equal(labels, np.round(labels)):
            raise InputDataError("label map holds non-integer values", path=path,
                                 fix="give a label map (integer voxel values), not an image")
    if labels.size and labels.min() < 0:
        raise InputDataError("label map holds negative values", path=path, fix="give a label map with values >= 0")
    if source == "anatomy14":
        if labels.size and labels.max() >= NUM_LABELS:
            stray = np.unique(labels[labels >= NUM_LABELS])
            raise InputDataError(
                f"has label(s) {', '.join(f'{v:g}' for v in stray[:8])}, but a 14-label anatomy map has values "
                f"0..{NUM_LABELS - 1}",
                path=path, fix="pass --anatomy-source totalseg if this is a TotalSegmentator 'total' output")
        return Volume(labels.astype(np.uint8), ct.geometry)
    try:
        grouped = totalseg_to_anatomy(labels.astype(np.int64, copy=False), ct.array)
    except ValueError as exc:
        raise InputDataError(f"is not a TotalSegmentator 'total' label map ({exc})", path=path,
                             fix="give the multi-label output of `TotalSegmentator --ml` (task total), or "
                                 "pass --anatomy-source anatomy14 for a ready 14-label map") from exc
    return Volume(grouped, ct.geometry)
