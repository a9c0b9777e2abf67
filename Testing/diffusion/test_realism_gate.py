"""The realism gate can fail: a label-painting "generator" and a noisy, offset one fail it, a real-like one passes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from LNSynthLib.cases import list_cases, load_case
from LNSynthLib.diffusion.sample.realism_gate import gate, lookalike_blobs, loss_plateau, realism_figures


def _windows(phantom_cases: Path, n: int = 4, size: int = 32) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Real windows around nodes of the phantom cases (HU clipped to LN-DDPM's window, as samples are)."""
    out = []
    for folder in list_cases(phantom_cases)[:n]:
        case = load_case(folder)
        centre = np.argwhere(case.ln.array > 0).mean(axis=0).round().astype(int)
        start = [int(np.clip(c - size // 2, 0, s - size)) for c, s in zip(centre, case.ct.shape, strict=True)]
        box = tuple(slice(a, a + size) for a in start)
        out.append((np.clip(case.ct.array[box], -120, 240), case.anatomy.array[box], case.ln.array[box]))
    return out


def _label_means(ct: np.ndarray, anatomy: np.ndarray, ln: np.ndarray) -> np.ndarray:
    painted = np.zeros_like(ct)
    for label in np.unique(anatomy):
        region = (anatomy == label) & ~(ln > 0)
        painted[region] = ct[region].mean()
    painted[ln > 0] = ct[ln > 0].mean()
    return painted


def test_gate_passes_real_like_samples_and_fails_label_painting(phantom_cases: Path) -> None:
    windows = _windows(phantom_cases)
    rng = np.random.default_rng(0)
    real_like = [ct + rng.normal(0, 3, ct.shape) for ct, _, _ in windows]
    verdict = gate(realism_figures(windows, real_like), None)
    assert verdict["passed"], verdict["failed"]

    painted = gate(realism_figures(windows, [_label_means(*w) for w in windows]), None)
    assert not painted["passed"]
    assert {"texture_ratio", "lookalike_blobs", "node_sd_hu"} <= set(painted["failed"])

    noisy_offset = [ct + 25 + rng.normal(0, 30, ct.shape) for ct, _, _ in windows]   # an under-trained model
    failed = set(gate(realism_figures(windows, noisy_offset), None)["failed"])
    assert {"abs_global_offset_hu", "texture_ratio"} <= failed


def test_lookalike_blobs_counts_unlabelled_soft_tissue_in_fat() -> None:
    from LNSynthLib.anatomy.groups import BODY

    ct = np.full((32, 32, 32), -100.0)
    anatomy = np.full(ct.shape, BODY, dtype=np.uint8)
    ln = np.zeros(ct.shape, dtype=np.uint8)
    ct[4:10, 4:10, 4:10] = 30.0         # a look-alike (6 mm)
    ct[20:24, 20:24, 20:24] = 40.0     # a labelled node: not counted
    ln[20:24, 20:24, 20:24] = 1
    ct[12:14, 26:28, 12:14] = 30.0     # smaller than a blob after smoothing
    assert lookalike_blobs(ct, anatomy, ln) == 1


def test_loss_plateau_needs_two_windows_and_a_flat_loss() -> None:
    falling = [(s, 1.0 / (1 + s / 50)) for s in range(10, 601, 10)]
    flat = [(s, 0.3 + 0.001 * ((s // 10) % 2)) for s in range(10, 601, 10)]
    assert not loss_plateau(falling)["flat"]
    assert loss_plateau(flat)["flat"]
    assert not loss_plateau(flat[:20])["flat"]    # 200 iterations: not two full windows yet
    assert loss_plateau(flat)["relative_drop"] == pytest.approx(0.0, abs=0.01)
