"""False positives split by what they fell on, from the phantom's own tissue map."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from LNSynthLib.phantom import tissues as T
from LNSynthLib.phantom.false_positives import ORDER, add_splits, false_positive_split, phantom_tissue
from LNSynthLib.phantom.generate import generate_phantom


def test_false_positives_land_in_the_class_they_fell_on(tmp_path) -> None:
    phantom = generate_phantom(3, (64, 64, 64))
    tissue, gt = phantom.tissue.array, phantom.ln.array > 0
    ureter = tissue == T.URETER
    border = ndimage.binary_dilation(gt, iterations=1) & ~gt
    pred = gt | ureter | border
    split = false_positive_split(pred.astype(np.uint8), gt.astype(np.uint8), tissue)
    assert split["voxels"]["ureter"] == int((ureter & ~ndimage.binary_dilation(gt, iterations=2)).sum()) > 0
    assert split["voxels"]["node border"] == int(((ureter | border) & ~gt & ndimage.binary_dilation(gt, iterations=2)).sum())
    assert sum(split["voxels"].values()) == int((pred & ~gt).sum())
    assert split["components"]["ureter"] >= 1 and set(split["voxels"]) == set(ORDER)
    perfect = false_positive_split(gt.astype(np.uint8), gt.astype(np.uint8), tissue)
    assert sum(perfect["voxels"].values()) == 0
    assert add_splits(split, split)["voxels"]["ureter"] == 2 * split["voxels"]["ureter"]


def test_tissue_map_of_a_prepared_phantom_case(tmp_path) -> None:
    from LNSynthLib.cases import load_case
    from LNSynthLib.phantom import write_phantom_cases

    folder = write_phantom_cases(tmp_path, 1, seed=5, shape_zyx=(48, 48, 48))[0]
    tissue = phantom_tissue(folder)
    case = load_case(folder)
    assert tissue is not None and tissue.shape == case.ct.shape
    assert np.isin(tissue[case.ln.array > 0], (T.NODE, T.NODE_HILUM)).mean() > 0.9
