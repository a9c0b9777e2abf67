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
# What a lymph-node annotation stays within (a CT, a body mask or a TotalSegmentator map given as
# the LN mask does not). Bulky or conglomerate abdominal nodes reach about 10 cm; all nodes together
# are a few per cent of the body at most; annotations hold tens of nodes, not hundreds.
LN_MAX_COMPONENT_EXTENT_MM = 120.0
LN_MAX_BODY_FRACTION = 0.05
LN_MAX_COMPONENTS = 200


def non_finite_error(bad: int, path: str | Path | None) -> InputDataError:
    """The one message for NaN/inf voxels, whether found by the reader (NIfTI) or in the array (NRRD, MHA)."""
    return InputDataError(f"contains {bad} NaN/infinite voxel values", path=path,
                          fix="re-export the CT from the scanner/PACS or Slicer; do not use a processed "
                              "float image with undefined voxels")


def blank_ct_error(what: str, path: str | Path | None) -> InputDataError:
    """The one message for a CT with no patient in it: one value everywhere, or padding with almost nothing else."""
    return InputDataError(f"is blank: {what} HU, so there is no patient in it (no contrast at all)", path=path,
                          fix="give the CT as exported from the scanner/PACS or Slicer; a blank volume comes from an "
                              "export or conversion that failed, or is the wrong file (a placeholder, an empty "
                              "reconstruction)")


def check_ct(volume: Volume, path: str | Path | None) -> None:
    """Reject non-CT input: NaN/inf, no negative HU (8-bit images, MR, unrescaled raw values), absurd maxima."""
    arr = volume.array
    if not np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_:
        raise InputDataError(f"has voxel type {arr.dtype}, not a CT in Hounsfield units", path=path,
                             fix="give the CT image itself, not a mask or label map")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise non_finite_error(int((~np.isfinite(arr)).sum()), path)
    lo, hi = float(arr.min()), float(arr.max())
    if lo == hi:
        raise blank_ct_error(f"every voxel is {lo:g}", path)
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


# The physics a radiologist checks first (`check_ct_physics`): air is about -1000 HU and nothing in a patient
# is less dense; fat is about -100 HU, soft tissue 20..80 HU; an abdomen is 15..50 cm across.
PADDING_MAX_HU = -1024.0         # the scanner's fill outside the field of view is at or below this
BELOW_AIR_HU = -1200.0
MAX_BELOW_AIR_FRACTION = 0.01
LOWEST_TISSUE_MAX_HU = -80.0     # some air or fat must be there: the lowest tissue values lie below this
MIN_IMAGE_FRACTION = 0.01        # of the voxels, at least this share is not padding (a body fills a tenth or more)
BODY_HU = -500.0                 # body (and lung) above this, air below
FAT_SOFT_HU = (-200.0, 150.0)    # fat and soft tissue
MIN_FAT_SOFT_FRACTION = 0.3      # of the body: an abdomen is mostly fat, muscle and organs
BODY_WIDTH_MM = (80.0, 1000.0)   # a neonate's abdomen to the widest CT bore
# Below 80 mm the body is refused when it is tiny or when the voxels are (a CT's in-plane voxels are 0.3..1.5 mm;
# in cm they read 0.03..0.15): small test volumes and tight crops on a millimetre grid still pass.
BODY_MIN_ANY_MM = 30.0
CM_SPACING_BELOW_MM = 0.2


def _hu_sample(arr: np.ndarray) -> np.ndarray:
    """About a million voxels spread evenly over the volume (for percentiles; a full CT has 80 million)."""
    step = max(1, round((arr.size / 1_000_000) ** (1 / 3)))
    return np.asarray(arr[::step, ::step, ::step], dtype=np.float32).ravel()


def check_ct_physics(volume: Volume, path: str | Path | None) -> None:
    """Refuse a CT whose HU or size cannot be a patient's: an offset or scaled HU scale, spacing in other units.

    Runs after `check_ct` on a patient's CT given by the user (`io.read_patient_ct`: prepare, anatomy, nnunet
    predict); a CT that is (almost) all padding is called blank. Values at the scanner's padding
    (the volume's minimum, at or below -1024 HU) are left out of the HU rules.
    """
    arr = volume.array
    values = _hu_sample(arr)
    lowest = float(values.min())
    if lowest <= PADDING_MAX_HU:
        sampled = values.size
        values = values[values != lowest]
        if values.size < MIN_IMAGE_FRACTION * sampled:
            raise blank_ct_error(f"{100 * (1 - values.size / sampled):.2f}% of its voxels are the padding value "
                                 f"{lowest:g}", path)
    below_air = float(np.mean(values < BELOW_AIR_HU))
    offset_fix = ("check the DICOM rescale intercept/slope (applied twice, or not at all); a CT in HU has air at "
                  "about -1000, fat at about -100 and soft tissue at about 40 HU")
    if below_air > MAX_BELOW_AIR_FRACTION:
        raise InputDataError(
            f"has {100 * below_air:.0f}% of its voxels below {BELOW_AIR_HU:g} HU, less dense than air (-1000 HU), which "
            f"no patient is (1st percentile {np.percentile(values, 1):.0f} HU): its HU look offset or scaled",
            path=path, fix=offset_fix)
    low = float(np.percentile(values, 0.5))
    if low > LOWEST_TISSUE_MAX_HU:
        raise InputDataError(
            f"holds neither air (about -1000 HU) nor fat (about -100 HU): its lowest values (other than the padding) "
            f"are about {low:.0f} HU, so its HU look offset (by about {low + 1000:+.0f} if that is air)",
            path=path, fix=offset_fix)
    body = values[values > BODY_HU]
    if body.size:
        fat_soft = float(np.mean((body >= FAT_SOFT_HU[0]) & (body <= FAT_SOFT_HU[1])))
        if fat_soft < MIN_FAT_SOFT_FRACTION:
            raise InputDataError(
                f"has little fat or soft tissue: {100 * fat_soft:.0f}% of its voxels above {BODY_HU:g} HU lie within "
                f"{FAT_SOFT_HU[0]:g}..{FAT_SOFT_HU[1]:g} HU (median {np.median(body):.0f} HU), where an abdomen has "
                f"most of them: its HU look offset or scaled", path=path, fix=offset_fix)
    inside = arr > BODY_HU
    widths = []
    for axis_zyx, spacing in ((2, volume.geometry.spacing[0]), (1, volume.geometry.spacing[1])):
        profile = np.flatnonzero(inside.any(axis=tuple(a for a in range(3) if a != axis_zyx)))
        widths.append(0.0 if profile.size == 0 else (int(profile[-1]) - int(profile[0]) + 1) * float(spacing))
    width = max(widths)
    too_small = width < BODY_MIN_ANY_MM or (width < BODY_WIDTH_MM[0]
                                            and min(volume.geometry.spacing[:2]) < CM_SPACING_BELOW_MM)
    if too_small or width > BODY_WIDTH_MM[1]:
        units = "cm" if width < BODY_WIDTH_MM[0] else "micrometres"
        raise InputDataError(
            f"shows a body {width:.0f} mm across (voxel spacing {', '.join(f'{v:g}' for v in volume.geometry.spacing)} "
            f"mm), where an abdomen is {BODY_WIDTH_MM[0]:.0f}..{BODY_WIDTH_MM[1]:.0f} mm: the spacing looks given in "
            f"{units}, not mm", path=path,
            fix="write the voxel spacing in millimetres (NIfTI/NRRD header; Slicer's Volumes module shows it), or give "
                "the whole CT rather than a small crop")


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
    if count > LN_MAX_BODY_FRACTION * max(int(inside.sum()), 1):
        raise InputDataError(
            f"lymph nodes would cover {100 * count / max(int(inside.sum()), 1):.0f}% of the body (at most "
            f"{100 * LN_MAX_BODY_FRACTION:.0f}% is plausible)", path=path,
            fix="give the lymph-node mask, not a body, organ or region mask")
    outside = int((mask & ~inside).sum())
    if outside > MAX_LN_OUTSIDE_FRACTION * count:
        raise InputDataError(
            f"{outside} of {count} lymph-node voxels ({100 * outside / count:.0f}%) lie outside the body "
            f"(in air)", path=path,
            fix="the mask is probably misaligned with the CT (wrong file, flipped or shifted export); "
                "re-export it from the same CT, or erase the nodes painted outside the patient")


def check_ln_labels(ln: Volume, path: str | Path | None) -> None:
    """An LN mask is 0 plus one label value, with node-sized components (see the LN_MAX_* limits)."""
    from LNSynthLib.volumes.masks import label_components

    arr = np.asarray(ln.array)
    values = np.unique(arr[arr != 0])
    if values.size > 1 or (values.size == 1 and not float(values[0]) > 0):
        shown = ", ".join(f"{v:g}" for v in values[:5]) + (", ..." if values.size > 5 else "")
        raise InputDataError(
            f"is not a lymph-node mask: it holds {values.size} different non-zero values ({shown}); a mask has 0 "
            f"and one positive label value", path=path,
            fix="give the binary lymph-node mask (e.g. exported from the Segment Editor), not the CT or a "
                "multi-label map such as TotalSegmentator's output")
    mask = arr > 0
    if not mask.any():
        return  # emptiness is reported by check_ln_mask, which knows the body
    bounds = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    outer = tuple(slice(int(b[0]), int(b[-1]) + 1) for b in bounds)
    labels, count = label_components(mask[outer])
    if count > LN_MAX_COMPONENTS:
        raise InputDataError(f"has {count} separate components, more than the {LN_MAX_COMPONENTS} lymph nodes an "
                             f"annotation plausibly holds", path=path,
                             fix="give the lymph-node mask (not a thresholded image or noise); remove stray voxels")
    spacing_zyx = np.asarray(ln.geometry.spacing, dtype=float)[::-1]
    from scipy import ndimage

    for box in ndimage.find_objects(labels):
        if box is None:
            continue
        extent = float(max((s.stop - s.start) * sp for s, sp in zip(box, spacing_zyx, strict=True)))
        if extent > LN_MAX_COMPONENT_EXTENT_MM:
            raise InputDataError(
                f"has a component {extent:.0f} mm long; a lymph node is at most about "
                f"{LN_MAX_COMPONENT_EXTENT_MM:.0f} mm", path=path,
                fix="give the lymph-node mask, not a body, organ or region mask (or split a merged annotation)")
