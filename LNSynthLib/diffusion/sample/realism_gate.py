"""When is an LN-DDPM trained enough to feed a segmenter? A gate that a label-painting model fails.

The condition-fidelity check (`condition_fidelity.follows_conditions`) asks whether per-region
mean HU follow the labels. A model that paints each label's mean passes it, as did the benchmark's
generator after 150 iterations, whose samples were noisy, offset per sample, had fat inside the
nodes and had lost the unlabelled node look-alikes that make a segmenter careful. This gate
compares samples with the real windows their conditions came from, figure by figure, each within a
stated tolerance of the real value (`TOLERANCES`), and asks the training loss to have flattened:

- node HU mean and SD inside the LN mask;
- the per-sample global offset: the median over the anatomy regions of (generated − real) mean HU (regions
  saturated at the ends of LN-DDPM's HU window left out);
- fat-like voxels (< `FAT_LIKE_HU`) inside node masks, as a share of node voxels;
- texture: the median generated/real HU SD within the anatomy regions (`condition_fidelity`);
- node–fat contrast (`condition_fidelity.ln_fat_contrast`);
- unlabelled node-like blobs per window (`lookalike_blobs`): soft-tissue blobs in the body label
  outside the LN mask, what the segmenter must learn to leave alone;
- the loss plateau: the mean loss of the last `PLATEAU_WINDOW` iterations is less than
  `PLATEAU_MAX_DROP` below that of the window before.

The windows are drawn with a seed the training never uses (`GATE_SEED`); with a handful of training
cases they are not held out from training in the strict sense (every voxel of a training case can
appear in a training crop): the gate measures realism, not generalization.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from LNSynthLib.anatomy.groups import BODY
from LNSynthLib.diffusion.sample.condition_fidelity import ln_fat_contrast, region_means, region_stds

GATE_SEED = 4321              # evaluation windows (training crops come from train.seed's stream)
GATE_WINDOWS = 8              # LN-containing windows sampled per check
FAT_LIKE_HU = -30.0           # node voxels below this read as fat
BLOB_HU = (-10.0, 100.0)      # node-like soft tissue after smoothing (nodes 20-60 HU, look-alikes 15-90 HU)
BLOB_MIN_VOXELS = 10          # a blob smaller than this is noise at 1 mm
FAT_FILL_HU = -100.0         # what non-body voxels read as while blobs are counted
BLOB_SMOOTH_SIGMA = 1.0       # voxels; blobs are counted on a lightly smoothed image so noise does not count
UNSATURATED_HU = (-110.0, 230.0)   # regions whose real mean sits at the clip window's ends (air, cortical bone)
                                  # can only err one way; the global offset is taken over the others
PLATEAU_WINDOW = 150          # iterations averaged per window of the loss
PLATEAU_MAX_DROP = 0.05       # relative drop between the last two windows that still counts as flat

# figure: (kind, low, high). kind `diff`: generated − real within [low, high]; `ratio`: generated / real.
TOLERANCES: dict[str, tuple[str, float, float]] = {
    "node_mean_hu": ("diff", -10.0, 10.0),
    "node_sd_hu": ("ratio", 0.7, 1.3),
    "abs_global_offset_hu": ("diff", -10.0, 10.0),
    "fat_in_node_fraction": ("diff", -1.0, 0.02),
    "texture_ratio": ("value", 0.75, 1.33),
    "ln_fat_contrast_hu": ("ratio", 0.85, 1.15),
    "lookalike_blobs": ("ratio", 0.5, 2.0),
}


def lookalike_blobs(ct_hu: np.ndarray, anatomy: np.ndarray, ln: np.ndarray) -> int:
    """Node-like soft-tissue blobs in the body label that are not (near) a labelled node."""
    body = anatomy == BODY
    # Organs are filled with fat before smoothing, so an organ's edge does not bleed into the body label as a blob.
    smooth = ndimage.gaussian_filter(np.where(body, np.asarray(ct_hu, dtype=np.float32), FAT_FILL_HU),
                                     BLOB_SMOOTH_SIGMA)
    near_node = ndimage.binary_dilation(ln > 0, iterations=2)
    candidate = body & ~near_node & (smooth >= BLOB_HU[0]) & (smooth <= BLOB_HU[1])
    labels, n = ndimage.label(candidate)
    if n == 0:
        return 0
    sizes = np.bincount(labels.ravel())[1:]
    return int((sizes >= BLOB_MIN_VOXELS).sum())


def window_figures(ct_hu: np.ndarray, anatomy: np.ndarray, ln: np.ndarray) -> dict[str, float | None]:
    """The gate's figures of one image for one condition (real or generated)."""
    node = ln > 0
    values = ct_hu[node] if node.any() else np.empty(0)
    return {"node_mean_hu": float(values.mean()) if values.size else None,
            "node_sd_hu": float(values.std()) if values.size else None,
            "fat_in_node_fraction": float((values < FAT_LIKE_HU).mean()) if values.size else None,
            "ln_fat_contrast_hu": ln_fat_contrast(ct_hu, anatomy, ln),
            "lookalike_blobs": float(lookalike_blobs(ct_hu, anatomy, ln))}


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(kept)) if kept else None


def realism_figures(targets: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
                    generated: Sequence[np.ndarray]) -> dict[str, dict[str, float | None]]:
    """Per figure: the real value, the generated value (means over the windows)."""
    if len(targets) != len(generated) or not targets:
        raise ValueError("need one generated window per real window, at least one")
    real, gen, offsets, ratios = [], [], [], []
    for (ct, anatomy, ln), sample in zip(targets, generated, strict=True):
        real.append(window_figures(ct, anatomy, ln))
        gen.append(window_figures(sample, anatomy, ln))
        r_means, g_means = region_means(ct, anatomy, ln), region_means(sample, anatomy, ln)
        diffs = [g_means[k] - r_means[k] for k in r_means
                 if k != "ln" and UNSATURATED_HU[0] < r_means[k] < UNSATURATED_HU[1]]
        if diffs:
            offsets.append(abs(float(np.median(diffs))))
        r_sd, g_sd = region_stds(ct, anatomy, ln), region_stds(sample, anatomy, ln)
        ratios += [g_sd[k] / r_sd[k] for k in r_sd if r_sd[k] > 0]
    out = {key: {"real": _mean([w[key] for w in real]), "generated": _mean([w[key] for w in gen])}
           for key in real[0]}
    out["abs_global_offset_hu"] = {"real": 0.0, "generated": _mean(offsets)}
    out["texture_ratio"] = {"real": 1.0, "generated": float(np.median(ratios)) if ratios else None}
    return out


def within(figure: str, real: float | None, generated: float | None) -> bool:
    """Whether a generated figure is within its tolerance of the real one (`TOLERANCES`)."""
    kind, low, high = TOLERANCES[figure]
    if real is None or generated is None:
        return False
    if kind == "diff":
        return low <= generated - real <= high
    if kind == "value":
        return low <= generated <= high
    return real > 0 and low <= generated / real <= high


def loss_plateau(history: Sequence[tuple[int, float]], window: int = PLATEAU_WINDOW,
                 max_drop: float = PLATEAU_MAX_DROP) -> dict[str, Any]:
    """Whether the mean loss of the last `window` iterations is within `max_drop` of the window before."""
    if not history:
        return {"flat": False, "last": None, "before": None, "relative_drop": None}
    last_step = history[-1][0]
    last = [loss for step, loss in history if step > last_step - window]
    before = [loss for step, loss in history if last_step - 2 * window < step <= last_step - window]
    if not last or not before or last_step < 2 * window:
        return {"flat": False, "last": _mean(last), "before": _mean(before), "relative_drop": None}
    drop = (float(np.mean(before)) - float(np.mean(last))) / float(np.mean(before))
    return {"flat": bool(drop < max_drop), "last": float(np.mean(last)), "before": float(np.mean(before)),
            "relative_drop": float(drop)}


def gate(figures: dict[str, dict[str, float | None]], plateau: dict[str, Any] | None) -> dict[str, Any]:
    """Each figure's verdict, the plateau's, and whether all pass; `failed` names what missed."""
    checks = {name: within(name, figures[name]["real"], figures[name]["generated"]) for name in TOLERANCES}
    if plateau is not None:
        checks["loss_plateau"] = bool(plateau["flat"])
    failed = [name for name, ok in checks.items() if not ok]
    return {"passed": not failed, "checks": checks, "failed": failed, "figures": figures, "plateau": plateau,
            "tolerances": {k: list(v) for k, v in TOLERANCES.items()}}
