"""Does a sample follow its condition? The metric that tells a trained LN-DDPM from an untrained one.

Two figures, both in HU, computed against the real CT that the condition came from:
- Pearson r between target and generated per-region mean HU, pooled over samples, where the
  regions are the anatomy labels present in the patch (LN voxels excluded) plus the LN mask;
- LN−fat contrast: mean HU inside the LN mask minus mean HU of the surrounding fat (body-label
  voxels in a shell of `shell_voxels` around the nodes), for generated and target images.
An untrained denoiser (zero output) ignores the condition: r ≈ 0 and contrast ≈ 0 HU.
A third figure, not part of the pass rule, says how much texture a sampler keeps: the generated
within-region HU standard deviation over the target's (1 = as noisy as the real CT; a blurred,
posterior-mean-like sample is < 1 even when its region means are right).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from LNSynthLib.anatomy.groups import BODY

MIN_REGION_VOXELS = 20
MIN_CONTRAST_FRACTION = 0.5   # a sample follows its nodes with at least this share of the real LN−fat contrast


def _label_regions(anatomy: np.ndarray, ln: np.ndarray, min_voxels: int):  # noqa: ANN202 - a generator
    """(`label_<n>`, mask) per anatomy label without LN voxels, regions under `min_voxels` skipped."""
    for label in np.unique(anatomy):
        region = (anatomy == label) & ~ln
        if region.sum() >= min_voxels:
            yield f"label_{int(label)}", region


def region_means(ct_hu: np.ndarray, anatomy: np.ndarray, ln: np.ndarray,
                 min_voxels: int = MIN_REGION_VOXELS) -> dict[str, float]:
    """Mean HU per anatomy label (without LN voxels) and inside the LN mask; small regions skipped."""
    ln = ln > 0
    means = {key: float(ct_hu[region].mean()) for key, region in _label_regions(anatomy, ln, min_voxels)}
    if ln.sum() >= min(min_voxels, 5):
        means["ln"] = float(ct_hu[ln].mean())
    return means


def region_stds(ct_hu: np.ndarray, anatomy: np.ndarray, ln: np.ndarray,
                min_voxels: int = MIN_REGION_VOXELS) -> dict[str, float]:
    """HU standard deviation per anatomy label (without LN voxels), the texture within a region."""
    return {key: float(ct_hu[region].std()) for key, region in _label_regions(anatomy, ln > 0, min_voxels)}


def ln_fat_contrast(ct_hu: np.ndarray, anatomy: np.ndarray, ln: np.ndarray, shell_voxels: int = 3) -> float | None:
    """Mean HU in the nodes minus mean HU of body-label voxels around them (None without nodes)."""
    ln = ln > 0
    if not ln.any():
        return None
    shell = ndimage.binary_dilation(ln, iterations=shell_voxels) & ~ln & (anatomy == BODY)
    if not shell.any():
        return None
    return float(ct_hu[ln].mean() - ct_hu[shell].mean())


def pearson(a: Sequence[float], b: Sequence[float]) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def condition_fidelity(targets: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
                       generated: Sequence[np.ndarray]) -> dict[str, Any]:
    """Compare generated HU patches with the real patches whose (anatomy, LN) conditioned them.

    `targets[i]` = (target_ct_hu, anatomy, ln) and `generated[i]` the sample for that condition.
    """
    if len(targets) != len(generated) or not targets:
        raise ValueError("need one generated patch per target, at least one")
    tgt_vals, gen_vals, gen_c, tgt_c, std_ratios = [], [], [], [], []
    for (ct, anatomy, ln), sample in zip(targets, generated, strict=True):
        t_stds, g_stds = region_stds(ct, anatomy, ln), region_stds(sample, anatomy, ln)
        std_ratios += [g_stds[k] / t_stds[k] for k in t_stds if t_stds[k] > 0]
        t_means = region_means(ct, anatomy, ln)
        g_means = region_means(sample, anatomy, ln)
        for key in t_means:
            tgt_vals.append(t_means[key])
            gen_vals.append(g_means[key])
        gc, tc = ln_fat_contrast(sample, anatomy, ln), ln_fat_contrast(ct, anatomy, ln)
        if gc is not None and tc is not None:
            gen_c.append(gc)
            tgt_c.append(tc)
    return {
        "pearson_r": pearson(tgt_vals, gen_vals),
        "ln_fat_contrast_hu": float(np.mean(gen_c)) if gen_c else None,
        "target_ln_fat_contrast_hu": float(np.mean(tgt_c)) if tgt_c else None,
        "mean_abs_region_error_hu": float(np.mean(np.abs(np.subtract(tgt_vals, gen_vals)))),
        "texture_std_ratio": float(np.median(std_ratios)) if std_ratios else None,
        "n_regions": len(tgt_vals),
        "n_samples": len(generated),
    }


def follows_conditions(result: dict[str, Any], min_r: float = 0.8,
                       min_contrast_fraction: float = MIN_CONTRAST_FRACTION) -> bool:
    """r above `min_r` and at least `min_contrast_fraction` of the target's LN−fat contrast."""
    contrast, target = result.get("ln_fat_contrast_hu"), result.get("target_ln_fat_contrast_hu")
    if contrast is None or target is None:
        return False
    return result["pearson_r"] > min_r and contrast >= min_contrast_fraction * target
