"""Phantom cases with good and deliberately broken synthetic samples (real files) for the quality-control tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from LNSynthLib.anatomy.groups import BODY
from LNSynthLib.cases import Case, list_cases, load_case, save_case
from LNSynthLib.phantom import write_phantom_cases
from LNSynthLib.volumes.geometry import Volume

SIZE = 24


def _window(case: Case) -> tuple[tuple[slice, ...], tuple[int, int, int]]:
    zyx = np.argwhere(case.ln.array > 0).mean(axis=0).round().astype(int)
    start = tuple(int(np.clip(c - SIZE // 2, 0, n - SIZE)) for c, n in zip(zyx, case.ct.shape, strict=True))
    return tuple(slice(s, s + SIZE) for s in start), start


def _synthetic(out: Path, case: Case, k: int, ct: np.ndarray, ln: np.ndarray, start: tuple[int, int, int],
               anatomy: np.ndarray) -> None:
    geometry = case.ct.geometry.shifted(start)
    meta = {"synthetic": True, "source_case": case.case_id, "sample_index": k}
    save_case(Case(f"{case.case_id}_synt_{k}", Volume(ct.astype(np.float32), geometry), Volume(anatomy, geometry),
                   Volume(ln.astype(np.uint8), geometry), meta), out)


@pytest.fixture()
def data(tmp_path: Path) -> tuple[Path, Path]:
    """3 real phantom cases; per case a good sample (real window + CT-like noise) and one broken one.

    phantom_000_synt_1: a node painted into fat where the CT was not changed.
    phantom_001_synt_1: the node voxels at 200 HU.
    phantom_002_synt_1: every organ 120 HU brighter than its condition's real image.
    """
    train, synt = tmp_path / "train", tmp_path / "synt"
    write_phantom_cases(train, 3, seed=5, shape_zyx=(48, 64, 64))
    rng = np.random.default_rng(0)
    for i, folder in enumerate(list_cases(train)):
        case = load_case(folder)
        box, start = _window(case)
        ct, anatomy, ln = case.ct.array[box], case.anatomy.array[box], case.ln.array[box]
        _synthetic(synt, case, 0, ct + rng.normal(0, 8, ct.shape), ln, start, anatomy)
        bad_ct, bad_ln = ct.copy(), ln.copy()
        if i == 0:      # painted in fat, CT unchanged: a ball of body-label fat voxels far from the nodes
            fat = (anatomy == BODY) & (ct < -60) & ~ndimage.binary_dilation(ln > 0, iterations=4)
            centre = np.argwhere(ndimage.binary_erosion(fat, iterations=2))[0]
            zz, yy, xx = np.indices(ct.shape)
            ball = ((zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2) <= 4
            bad_ln[ball & fat] = 1
        elif i == 1:
            bad_ct[ln > 0] = 200.0
        else:
            bad_ct[anatomy > BODY] += 120.0
        _synthetic(synt, case, 1, bad_ct, bad_ln, start, anatomy)
    return train, synt
