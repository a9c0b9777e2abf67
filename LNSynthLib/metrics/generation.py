"""Generation metrics of both papers: MSE, PSNR, 3D MS-SSIM, SSIM, LPIPS, NodeRecall_synt, organ Dice.

Images are compared in the paper's intensity window mapped to [0, 1] (HU [-120, 240]), so MSE,
PSNR (data range 1), MS-SSIM and SSIM are on the scale of paper 000's Table 1. FID (paper 002)
compares sets, not pairs: see `metrics/fid.py`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from LNSynthLib.metrics.segmentation import dice, node_detection

WINDOW = (-120.0, 240.0)
MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
SSIM_KERNEL, SSIM_SIGMA = 11, 1.5   # Wang et al.'s Gaussian window, the usual SSIM setting


def to_unit(hu: np.ndarray, window: tuple[float, float] = WINDOW) -> np.ndarray:
    lo, hi = window
    return ((np.clip(np.asarray(hu, dtype=np.float32), lo, hi) - lo) / (hi - lo)).astype(np.float32)


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    err = mse(a, b)
    return float("inf") if err == 0 else 10.0 * math.log10(data_range**2 / err)


@dataclass(frozen=True)
class MsSsimSetup:
    kernel_size: int
    weights: tuple[float, ...]
    note: str


def msssim_setup(shape_zyx: Sequence[int], kernel_size: int = 7, scales: int = 5) -> MsSsimSetup:
    """Kernel and scales that fit a volume: every scale must still hold one kernel.

    The standard 5 scales with an 11-voxel kernel need ≥ 176 voxels per side; at 128³ a kernel of 7
    fits 5 scales (7·2⁴ = 112); smaller patches get fewer scales (weights renormalised) and, below
    that, a smaller kernel. The note says what was used so reports can state it.
    """
    side = min(int(s) for s in shape_zyx)
    kernel = kernel_size
    n = scales
    while n > 1 and kernel * 2 ** (n - 1) > side:
        n -= 1
    while kernel > 3 and kernel > side:
        kernel -= 2
    weights = np.asarray(MSSSIM_WEIGHTS[:n], dtype=float)
    weights = tuple(float(w) for w in weights / weights.sum())
    note = f"MS-SSIM: kernel {kernel}, {n} scale(s)"
    if n < scales or kernel < kernel_size:
        note += f" (reduced from kernel {kernel_size}, {scales} scales for a {side}-voxel side)"
    return MsSsimSetup(kernel, weights, note)


def ms_ssim_3d(a: np.ndarray, b: np.ndarray, data_range: float = 1.0, kernel_size: int = 7,
               scales: int = 5) -> tuple[float, str]:
    """3D MS-SSIM through MONAI's MultiScaleSSIMMetric; returns (value, note on kernel/scales)."""
    from monai.metrics import MultiScaleSSIMMetric

    setup = msssim_setup(np.shape(a), kernel_size, scales)
    metric = MultiScaleSSIMMetric(spatial_dims=3, data_range=data_range, kernel_size=setup.kernel_size,
                                  weights=setup.weights)
    ta = torch.as_tensor(np.asarray(a, np.float32))[None, None]
    tb = torch.as_tensor(np.asarray(b, np.float32))[None, None]
    value = metric(ta, tb)
    return float(value.mean()), setup.note


def ssim_3d(a: np.ndarray, b: np.ndarray, data_range: float = 1.0, kernel_size: int = SSIM_KERNEL) -> float:
    """Single-scale 3D SSIM (paper 002) through MONAI's SSIMMetric, Gaussian window σ 1.5, K1 0.01, K2 0.03.

    Mean of the SSIM map over the positions where the whole window fits (MONAI's valid convolution);
    a volume smaller than the window gets the largest odd window that fits.
    """
    from monai.metrics import SSIMMetric

    side = min(int(s) for s in np.shape(a))
    kernel = min(kernel_size, side if side % 2 else side - 1)
    metric = SSIMMetric(spatial_dims=3, data_range=data_range, kernel_type="gaussian", win_size=max(kernel, 1),
                        kernel_sigma=SSIM_SIGMA)
    ta = torch.as_tensor(np.asarray(a, np.float32))[None, None]
    tb = torch.as_tensor(np.asarray(b, np.float32))[None, None]
    return float(metric(ta, tb).mean())


def lpips(a: np.ndarray, b: np.ndarray, features: object) -> float:
    """LPIPS between two [0, 1] volumes with a 3D feature net (see `lpips3d.load_medicalnet_features`)."""
    from LNSynthLib.metrics.lpips3d import lpips_3d, standardize

    ta = standardize(torch.as_tensor(np.asarray(a, np.float32))[None, None])
    tb = standardize(torch.as_tensor(np.asarray(b, np.float32))[None, None])
    with torch.no_grad():
        return float(lpips_3d(ta, tb, features)[0])  # type: ignore[arg-type]


def pair_metrics(real_hu: np.ndarray, synt_hu: np.ndarray, features: object | None = None) -> dict[str, object]:
    """MSE, PSNR, MS-SSIM, SSIM (and LPIPS with a feature net) of one real/synthetic pair on the same grid."""
    a, b = to_unit(real_hu), to_unit(synt_hu)
    value, note = ms_ssim_3d(a, b)
    out: dict[str, object] = {"MSE": mse(a, b), "PSNR": psnr(a, b), "MS-SSIM": value, "SSIM": ssim_3d(a, b),
                              "msssim_note": note}
    if features is not None:
        out["LPIPS"] = lpips(a, b, features)
    return out


def node_recall_synt(predictions: Mapping[str, np.ndarray], ln_masks: Mapping[str, np.ndarray]) -> float:
    """Paper 000 NodeRecall_synt: nodes of the synthetic masks found by a real-data segmenter, pooled.

    Both are keyed by case id: a prediction is scored against its own case's mask, never by list position.
    """
    if set(predictions) != set(ln_masks):
        raise ValueError(f"predictions and LN masks name other cases: {sorted(set(predictions) ^ set(ln_masks))}")
    found = total = 0
    for case, ln in ln_masks.items():
        f, t = node_detection(predictions[case], ln)
        found, total = found + f, total + t
    return found / total if total else float("nan")


def organ_dice(pred_labels: np.ndarray, true_labels: np.ndarray, labels: Sequence[int],
               names: Sequence[str] | None = None) -> dict[str, float]:
    """Paper 002: Dice per organ label between a segmenter's output on a synthetic image and its condition."""
    names = names or [str(label) for label in labels]
    out = {}
    for label, name in zip(labels, names, strict=True):
        g = true_labels == label
        if g.any():
            out[name] = dice(pred_labels == label, g)
    return out


def real_crop_for(synthetic_folder: Path, real_root: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(real CT, synthetic CT) on the synthetic patch's grid, taken from its source case; None if unknown."""
    from LNSynthLib.cases import CT_FILE, read_meta
    from LNSynthLib.volumes.io import read_volume

    meta = read_meta(synthetic_folder)
    source = real_root / str(meta.get("source_case", ""))
    if not (source / CT_FILE).exists():
        return None
    synt = read_volume(synthetic_folder / CT_FILE)
    real = read_volume(source / CT_FILE)
    start = np.round(real.geometry.physical_to_index(np.asarray(synt.geometry.origin))).astype(int)[::-1]
    box = tuple(slice(int(s), int(s) + n) for s, n in zip(start, synt.shape, strict=True))
    if any(s.start < 0 or s.stop > n for s, n in zip(box, real.shape, strict=True)):
        return None
    return real.array[box], synt.array
