"""Paper 002's image metrics: 3D SSIM through MONAI and FID on MedicalNet features, on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from LNSynthLib.errors import MissingWeightsError
from LNSynthLib.metrics import generation as gm
from LNSynthLib.metrics.fid import fid_feature, frechet_distance
from LNSynthLib.metrics.lpips3d import load_medicalnet_features, medicalnet_resnet
from LNSynthLib.report.generation_eval import evaluate_generation
from LNSynthLib.report.tables import generation_table

C1, C2 = 0.01**2, 0.03**2   # SSIM's stability constants for data range 1


def _constant(value: float, side: int = 12) -> np.ndarray:
    return np.full((side,) * 3, value, np.float32)


def test_ssim_of_constant_volumes_is_the_luminance_term():
    # No variance: SSIM = (2 μa μb + C1) / (μa² + μb² + C1). MONAI sums the window in float32, which leaves
    # ~1e-6 of variance noise against C2 = 9e-4, hence the 1 % tolerance where the contrast term is involved.
    assert gm.ssim_3d(_constant(0.2), _constant(0.6)) == pytest.approx((0.24 + C1) / (0.40 + C1), rel=1e-2)
    assert gm.ssim_3d(_constant(0.25), _constant(0.75)) == pytest.approx((0.375 + C1) / (0.625 + C1), rel=1e-2)
    assert gm.ssim_3d(_constant(0.0), _constant(1.0)) == pytest.approx(C1 / (1 + C1), rel=1e-2)
    assert gm.ssim_3d(_constant(0.5), _constant(0.5)) == pytest.approx(1.0)


def _ssim_reference(a: np.ndarray, b: np.ndarray, size: int = 11, sigma: float = 1.5) -> float:
    """The SSIM definition in float64: Gaussian-weighted local statistics, mean over the valid positions."""
    g = np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2) / sigma) ** 2)
    g /= g.sum()
    kernel = g[:, None, None] * g[None, :, None] * g[None, None, :]
    half = size // 2

    def local(x: np.ndarray) -> np.ndarray:
        return ndimage.correlate(x, kernel, mode="constant")[half:-half, half:-half, half:-half]

    a, b = a.astype(np.float64), b.astype(np.float64)
    mu_a, mu_b = local(a), local(b)
    var_a, var_b, cov = local(a * a) - mu_a**2, local(b * b) - mu_b**2, local(a * b) - mu_a * mu_b
    ssim = (2 * mu_a * mu_b + C1) * (2 * cov + C2) / ((mu_a**2 + mu_b**2 + C1) * (var_a + var_b + C2))
    return float(ssim.mean())


def test_ssim_matches_the_definition_and_drops_with_noise():
    rng = np.random.default_rng(0)
    a = ndimage.gaussian_filter(rng.random((20, 20, 20)), 1.0).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1).astype(np.float32)
    assert gm.ssim_3d(a, a) == pytest.approx(1.0, abs=1e-5)
    value = gm.ssim_3d(a, b)
    assert value == pytest.approx(_ssim_reference(a, b), rel=2e-3)
    assert 0 < value < 0.9
    # A volume smaller than the 11-voxel window gets the largest odd window that fits (7 for 8³).
    small_a, small_b = a[:8, :8, :8], b[:8, :8, :8]
    assert gm.ssim_3d(small_a, small_b) == pytest.approx(_ssim_reference(small_a, small_b, size=7), rel=2e-3)


def test_pair_metrics_include_ssim():
    real, synt = np.full((12, 12, 12), -120.0), np.full((12, 12, 12), 60.0)   # 0 and 0.5 on the window
    m = gm.pair_metrics(real, synt)
    assert m["SSIM"] == pytest.approx(C1 / (0.25 + C1), rel=1e-2) and m["MSE"] == pytest.approx(0.25)


def test_fid_of_hand_computed_feature_sets():
    x = np.array([[1.0, 2.0], [-1.0, 2.0], [1.0, -2.0], [-1.0, -2.0]])
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    # A mean shift with the same covariance: FID = |shift|².
    assert frechet_distance(x, x + np.array([3.0, 4.0])) == pytest.approx(25.0)
    # y = 3x + (5, 0): means differ by 5; unbiased variances 4/3, 16/3 vs 12, 48 (diagonal, so they commute):
    # FID = 25 + (4/3 + 12 - 2·4) + (16/3 + 48 - 2·16) = 25 + 80/3.
    assert frechet_distance(x, 3 * x + np.array([5.0, 0.0])) == pytest.approx(25 + 80 / 3)
    assert math.isnan(frechet_distance(x[:1], x))          # one vector has no covariance
    with pytest.raises(ValueError):
        frechet_distance(x, np.ones((4, 3)))


def test_fid_of_gaussian_features_approaches_the_closed_form():
    # Many samples of N(0, I) and N(μ, 4 I) in 3 dimensions: FID → |μ|² + 3·(1 - 2)² = 4 + 3 = 7.
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (20000, 3))
    b = rng.normal(0, 2, (20000, 3)) + np.array([2.0, 0.0, 0.0])
    assert frechet_distance(a, b) == pytest.approx(7.0, rel=0.03)


@pytest.fixture
def medicalnet_file(tmp_path):
    """A randomly initialised MedicalNet-layout ResNet-10, saved as MedicalNet does ({"state_dict": module.*})."""
    torch.manual_seed(0)
    net = medicalnet_resnet(10)
    path = tmp_path / "weights" / "resnet_10_23dataset.pth"
    path.parent.mkdir()
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)
    return path


def test_fid_features_from_a_medicalnet_file(medicalnet_file):
    net = load_medicalnet_features(medicalnet_file, purpose="FID", option="--fid-weights")
    rng = np.random.default_rng(1)
    vols = [rng.random((16, 16, 16)).astype(np.float32) for _ in range(3)]
    feats = np.array([fid_feature(v, net) for v in vols])
    assert feats.shape == (3, 512) and np.isfinite(feats).all()
    assert frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-6)
    other = np.array([fid_feature(ndimage.gaussian_filter(v, 2.0), net) for v in vols])   # smoothed set
    assert frechet_distance(feats, other) > 1e-6


def test_missing_fid_weights_name_the_file_the_option_and_the_source(tmp_path):
    with pytest.raises(MissingWeightsError) as err:
        load_medicalnet_features(tmp_path, purpose="FID", option="--fid-weights")
    message = str(err.value)
    assert message.startswith(str(tmp_path / "resnet_10_23dataset.pth"))
    assert "FID needs" in message and "--fid-weights" in message and "MedicalNet" in message
    # The evaluation refuses a wrong --fid-weights path before computing anything, with the same message.
    with pytest.raises(MissingWeightsError, match="--fid-weights"):
        evaluate_generation(tmp_path, tmp_path, work_dir=tmp_path, fid_weights=tmp_path / "nope.pth")


def test_generation_evaluation_reports_ssim_and_fid(phantom_root, synthetic_root, medicalnet_file, tmp_path):
    result = evaluate_generation(phantom_root, synthetic_root, work_dir=tmp_path, fid_weights=medicalnet_file)
    assert result["pairs"] == 8 and 0.3 < result["SSIM"] < 1.0     # real crop + noise: similar, not equal
    assert result["FID"] >= 0 and math.isfinite(result["FID"]) and "8 real crops vs 8 synthetic" in result["note"]
    assert math.isnan(result["LPIPS"])                              # FID weights do not switch LPIPS on
    shared = evaluate_generation(phantom_root, synthetic_root, work_dir=tmp_path, lpips_weights=medicalnet_file,
                                 limit=3)                           # FID defaults to the LPIPS network
    assert shared["LPIPS"] > 0 and shared["FID"] >= 0 and "3 real crops vs 3 synthetic" in shared["note"]
    without = evaluate_generation(phantom_root, synthetic_root, work_dir=tmp_path, limit=2)
    assert math.isnan(without["FID"]) and "FID not computed: pass --fid-weights" in without["note"]
    table = generation_table([result])
    assert "| SSIM ↑ | FID ↓ |" in table and f"{result['SSIM']:.4f} | {result['FID']:.4f} | 8 |" in table


def test_fid_agrees_with_monai_where_monai_is_well_conditioned():
    # Full-rank covariances (more samples than features): the eigenvalue form equals MONAI's FIDMetric.
    from monai.metrics import FIDMetric

    rng = np.random.default_rng(3)
    a = rng.normal(0, 1, (200, 5)) @ rng.normal(0, 1, (5, 5))
    b = rng.normal(0.5, 1, (150, 5)) @ rng.normal(0, 1, (5, 5))
    expected = float(FIDMetric()(torch.from_numpy(b), torch.from_numpy(a)))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
