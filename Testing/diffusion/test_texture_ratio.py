"""The texture figure of `condition_fidelity`: generated / real within-region HU std (blur shows as < 1)."""

from __future__ import annotations

import numpy as np

from LNSynthLib.diffusion.sample.condition_fidelity import condition_fidelity


def test_texture_std_ratio_sees_blur_that_region_means_do_not() -> None:
    rng = np.random.default_rng(0)
    anatomy = np.zeros((16, 16, 16), dtype=np.uint8)
    anatomy[:, :8] = 1
    anatomy[:, 8:] = 2
    ln = np.zeros_like(anatomy)
    ln[6:10, 2:6, 6:10] = 1
    means = np.where(anatomy == 1, 40.0, -100.0) + 60.0 * ln
    real = (means + rng.normal(0, 20, means.shape)).astype(np.float32)
    half = (means + rng.normal(0, 10, means.shape)).astype(np.float32)
    same = condition_fidelity([(real, anatomy, ln)], [real])
    blurred = condition_fidelity([(real, anatomy, ln)], [half])
    assert same["texture_std_ratio"] == 1.0
    assert 0.45 < blurred["texture_std_ratio"] < 0.55
    assert blurred["mean_abs_region_error_hu"] < 3           # the region means stay right
