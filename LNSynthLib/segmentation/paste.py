"""Paste a synthetic patch back into its real source CT, so a segmenter sees full abdominal context.

The patch keeps its physical position (its geometry); it is resampled onto the CT grid and
blended with a weight that rises smoothly from 0 at the patch border to 1 at `blend_mm`
inside it. So inside the patch the result is exactly the synthetic image, far outside it is
exactly the real CT, and there is no hard seam at the border for the segmenter to learn.
"""

from __future__ import annotations

import numpy as np

from LNSynthLib.errors import InputDataError
from LNSynthLib.volumes.geometry import Volume
from LNSynthLib.volumes.grid import resample_onto

DEFAULT_BLEND_MM = 4.0


def border_weight(shape_zyx: tuple[int, int, int], spacing_xyz: tuple[float, float, float],
                  blend_mm: float) -> np.ndarray:
    """Blend weight inside a patch: smoothstep of the distance (mm) from the voxel to the nearest patch face."""
    spacing_zyx = tuple(spacing_xyz)[::-1]
    dist = np.full(shape_zyx, np.inf, dtype=np.float64)
    for axis, (n, s) in enumerate(zip(shape_zyx, spacing_zyx, strict=True)):
        idx = np.arange(n, dtype=np.float64)
        # Distance of the voxel centre to the outer face of the patch (half a voxel beyond the edge voxel).
        d_axis = (np.minimum(idx, n - 1 - idx) + 0.5) * s
        shape = [1, 1, 1]
        shape[axis] = n
        dist = np.minimum(dist, d_axis.reshape(shape))
    if blend_mm <= 0:
        return np.ones(shape_zyx, dtype=np.float32)
    t = np.clip(dist / blend_mm, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def paste_patch(ct: Volume, patch: Volume, ln_ct: Volume, ln_patch: Volume,
                blend_mm: float = DEFAULT_BLEND_MM) -> tuple[Volume, Volume]:
    """Return (CT with the patch blended in, LN mask with the patch's nodes in the patch region).

    `ct`/`ln_ct` share one grid, `patch`/`ln_patch` another (usually a crop of it); the outputs
    keep the CT's grid. LN labels come from the patch where the blend weight is at least 0.5
    (the synthetic nodes replace the real ones there) and from the real mask elsewhere.
    """
    if ct.shape != ln_ct.shape or not ct.geometry.isclose(ln_ct.geometry):
        raise InputDataError("CT and its lymph-node mask are not on the same grid",
                             fix="give the source case's ct.nii.gz and ln.nii.gz")
    if patch.shape != ln_patch.shape or not patch.geometry.isclose(ln_patch.geometry):
        raise InputDataError("synthetic patch and its lymph-node mask are not on the same grid",
                             fix="give the synthetic case's ct.nii.gz and ln.nii.gz")
    weight_patch = Volume(border_weight(patch.shape, patch.geometry.spacing, blend_mm), patch.geometry)
    weight = resample_onto(weight_patch, ct, "linear").array
    if not (weight > 0).any():
        raise InputDataError("the synthetic patch lies outside its source CT",
                             fix="paste a patch into the case it was sampled from (case.json source_case)")
    patch_on_ct = resample_onto(patch, ct, "linear").array
    ln_on_ct = resample_onto(ln_patch, ct, "nearest").array
    base = ct.array.astype(np.float32)
    blended = weight * patch_on_ct + (1.0 - weight) * base
    # Where the weight is exactly 0 or 1 keep the original values bit for bit (no float round trip).
    blended = np.where(weight <= 0.0, base, np.where(weight >= 1.0, patch_on_ct, blended))
    ln = np.where(weight >= 0.5, ln_on_ct > 0.5, ln_ct.array > 0).astype(np.uint8)
    return Volume(blended.astype(np.float32), ct.geometry), Volume(ln, ct.geometry)
