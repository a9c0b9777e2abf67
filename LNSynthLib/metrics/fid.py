"""Fréchet distance between real and synthetic image sets (paper 002's FID), on 3D MedicalNet features.

Paper 002 reports FID; Inception-v3 is a 2D ImageNet network and has no 3D counterpart, so the
features are those of the 3D MedicalNet ResNet whose weights the user supplies (the same file as
LPIPS, `lpips3d.load_medicalnet_features`): the last stage, globally average-pooled, as MONAI
suggests for 3D FID. Values are therefore not on the scale of 2D Inception FIDs.

The distance (Heusel et al.) is ‖μ_r − μ_s‖² + Tr(Σ_r + Σ_s − 2 (Σ_r Σ_s)^½) with unbiased
(N − 1) covariances, as MONAI's `FIDMetric`. The trace of the square root is taken from the
eigenvalues of the symmetric Σ_r^½ Σ_s Σ_r^½ (same spectrum as Σ_r Σ_s), which stays real and exact
when the covariances are singular, as they are with fewer samples than features; MONAI's general
`sqrtm` warns and may return complex values there (and relies on a SciPy argument due for removal).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

FID_FEATURES = "MedicalNet ResNet-10, last stage, global average pool"


def fid_feature(volume_unit: np.ndarray, features: Callable[[torch.Tensor], Sequence[torch.Tensor]]) -> np.ndarray:
    """Feature vector (C,) of one [0, 1] volume: last feature map of the net, averaged over space."""
    from LNSynthLib.metrics.lpips3d import standardize

    x = standardize(torch.as_tensor(np.asarray(volume_unit, np.float32))[None, None])
    with torch.no_grad():
        last = features(x)[-1]
    return last.float().mean(dim=tuple(range(2, last.dim())))[0].numpy().astype(np.float64)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (rounding-negative eigenvalues set to 0)."""
    w, v = np.linalg.eigh((matrix + matrix.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(real: np.ndarray, synthetic: np.ndarray) -> float:
    """FID of two feature sets of shape (N, C) each; NaN when a set has fewer than 2 vectors (no covariance)."""
    real, synthetic = np.atleast_2d(np.asarray(real, np.float64)), np.atleast_2d(np.asarray(synthetic, np.float64))
    if real.shape[1] != synthetic.shape[1]:
        raise ValueError(f"feature sizes differ: {real.shape[1]} vs {synthetic.shape[1]}")
    if len(real) < 2 or len(synthetic) < 2:
        return float("nan")
    cov_r = np.atleast_2d(np.cov(real, rowvar=False))
    cov_s = np.atleast_2d(np.cov(synthetic, rowvar=False))
    root_r = _psd_sqrt(cov_r)
    product = root_r @ cov_s @ root_r
    tr_sqrt = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((product + product.T) / 2), 0, None))))
    diff = real.mean(axis=0) - synthetic.mean(axis=0)
    value = float(diff @ diff + np.trace(cov_r) + np.trace(cov_s) - 2 * tr_sqrt)
    return max(0.0, value)   # a tiny negative value is rounding, not a distance
