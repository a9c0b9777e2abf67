"""Weights-free coarse anatomy from HU thresholds and morphology, on the same 14 label values.

Used when TotalSegmentator weights are not installed. It only separates what thresholds can:
air and gas (0), fat and small soft-tissue structures such as nodes and vessels in fat (1,
`body`), bone (11) and large soft-tissue regions (organs, muscles, bowel: 13, `other_organs`).
Organs are NOT told apart, so the result is flagged `coarse` wherever it is used.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from LNSynthLib.anatomy.body import air_mask, body_mask, fill_holes_in_plane
from LNSynthLib.anatomy.groups import LABEL_NAMES
from LNSynthLib.volumes.geometry import Volume

log = logging.getLogger(__name__)

AIR, BODY = LABEL_NAMES.index("air"), LABEL_NAMES.index("body")
BONES, OTHER = LABEL_NAMES.index("bones"), LABEL_NAMES.index("other_organs")
BONE_HU = 120.0            # cancellous bone is ~150-300 HU at CT resolution; cortex is higher
CORTEX_HU = 350.0          # a bone region must hold cortex, which keeps contrast-filled vessels out
BONE_MIN_VOLUME_MM3 = 1000.0
SOFT_TISSUE_HU = (-30.0, 200.0)
ORGAN_MIN_RADIUS_MM = 8.0   # soft tissue thinner than ~16 mm (nodes, vessels, bowel walls) stays `body`
MORPHOLOGY_GRID_MM = 3.0    # morphology runs on a ~3 mm grid so large CTs stay fast
COARSE_WARNING = ("coarse anatomy from HU thresholds (no TotalSegmentator weights): only air, body, bones and "
                  "'other_organs' are separated; install TotalSegmentator weights for the 14-label anatomy")


def coarse_anatomy(ct: Volume) -> Volume:
    """14-label map (uint8) of air, body, bones and large soft-tissue regions from HU alone."""
    log.warning(COARSE_WARNING)
    hu = np.asarray(ct.array, dtype=np.float32)
    body = body_mask(hu)
    out = np.where(air_mask(hu, body), AIR, BODY).astype(np.uint8)
    soft = body & (hu >= SOFT_TISSUE_HU[0]) & (hu < SOFT_TISSUE_HU[1])
    organs = _open_on_coarse_grid(soft, ct.geometry.spacing, ORGAN_MIN_RADIUS_MM) & soft
    out[organs] = OTHER
    out[_bone(hu, body, ct.voxel_volume_mm3)] = BONES
    return Volume(out, ct.geometry)


def _bone(hu: np.ndarray, body: np.ndarray, voxel_mm3: float) -> np.ndarray:
    """Regions above BONE_HU that are large and hold cortex, with marrow cavities filled per slice."""
    candidate = body & (hu >= BONE_HU)
    labels, count = ndimage.label(candidate, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 0:
        return candidate
    sizes = np.bincount(labels.ravel()) * voxel_mm3
    has_cortex = np.zeros(count + 1, dtype=bool)
    has_cortex[np.unique(labels[candidate & (hu >= CORTEX_HU)])] = True
    keep = (sizes >= BONE_MIN_VOLUME_MM3) & has_cortex
    keep[0] = False
    return fill_holes_in_plane(keep[labels]) & body


def _open_on_coarse_grid(mask: np.ndarray, spacing_xyz: tuple[float, float, float], radius_mm: float) -> np.ndarray:
    """Morphological opening with a ball of `radius_mm`, computed on a ~3 mm block grid and mapped back."""
    factors = [max(1, int(round(MORPHOLOGY_GRID_MM / s))) for s in spacing_xyz[::-1]]
    pads = [(0, (-n) % f) for n, f in zip(mask.shape, factors, strict=True)]
    padded = np.pad(mask, pads)
    shape = []
    for n, f in zip(padded.shape, factors, strict=True):
        shape += [n // f, f]
    blocks = padded.reshape(shape).mean(axis=(1, 3, 5)) > 0.5
    grid_mm = [s * f for s, f in zip(spacing_xyz[::-1], factors, strict=True)]
    radius = [max(1, int(round(radius_mm / g))) for g in grid_mm]
    zz, yy, xx = np.ogrid[-radius[0]:radius[0] + 1, -radius[1]:radius[1] + 1, -radius[2]:radius[2] + 1]
    ball = (zz / radius[0]) ** 2 + (yy / radius[1]) ** 2 + (xx / radius[2]) ** 2 <= 1.0
    opened = ndimage.binary_opening(blocks, structure=ball)
    full = opened
    for axis, f in enumerate(factors):
        full = np.repeat(full, f, axis=axis)
    return full[: mask.shape[0], : mask.shape[1], : mask.shape[2]]
