"""Grouping only the LN-region crop (as `prepare` does) against grouping the whole CT and cropping after.

The body outline is the largest tissue region with holes filled per slice; inside a crop a region can be cut
off from the body, or a gas pocket can reach the crop's border, so the two may differ, only between `air` and
`body`: the documented tolerance is at most `CROP_FIRST_TOLERANCE` of the crop's voxels (measured on the real
example CT: at most 0.02 %; on phantoms: identical).
"""

from __future__ import annotations

import numpy as np
import pytest

from LNSynthLib.anatomy.build import anatomy_from_labels, build_anatomy
from LNSynthLib.anatomy.groups import AIR, BODY
from LNSynthLib.phantom import generate_phantom
from LNSynthLib.volumes.geometry import Volume
from LNSynthLib.volumes.io import read_volume
from LNSynthLib.volumes.preprocess import ln_region_box

CROP_FIRST_TOLERANCE = 1e-3


def _assert_within_tolerance(full: np.ndarray, cropped: np.ndarray) -> None:
    assert full.shape == cropped.shape
    differ = full != cropped
    assert differ.mean() <= CROP_FIRST_TOLERANCE
    assert np.isin(full[differ], (AIR, BODY)).all() and np.isin(cropped[differ], (AIR, BODY)).all()


@pytest.mark.parametrize("margin_mm", [100.0, 50.0, 20.0])
def test_real_ct_crop_first_matches_full_grouping(example_ct_volume, example_totalseg, margin_mm):
    labels = read_volume(example_totalseg)
    full = anatomy_from_labels(labels, example_ct_volume, "totalseg").array
    rng = np.random.default_rng(0)
    for _ in range(4):
        ln = np.zeros(example_ct_volume.shape, np.uint8)
        z, y, x = (int(rng.integers(20, n - 20)) for n in ln.shape)
        ln[z - 2:z + 2, y - 2:y + 2, x - 2:x + 2] = 1
        box = ln_region_box(Volume(ln, example_ct_volume.geometry), margin_mm)
        cropped = anatomy_from_labels(labels, example_ct_volume, "totalseg", box=box)
        _assert_within_tolerance(full[box], cropped.array)
        assert cropped.shape == full[box].shape
        assert cropped.geometry.isclose(example_ct_volume.geometry.shifted(tuple(s.start for s in box)))


def test_phantom_crop_first_is_identical(tmp_path):
    phantom = generate_phantom(seed=1, shape_zyx=(80, 128, 128))
    full = anatomy_from_labels(phantom.totalseg, phantom.ct, "totalseg").array
    for margin_mm in (50.0, 20.0):
        box = ln_region_box(phantom.ln, margin_mm)
        assert full[box].size < full.size   # a real crop, not the whole volume
        cropped = anatomy_from_labels(phantom.totalseg, phantom.ct, "totalseg", box=box).array
        np.testing.assert_array_equal(cropped, full[box])


def test_build_anatomy_crops_file_and_coarse_sources(example_ct, example_ct_volume, example_totalseg):
    ln = np.zeros(example_ct_volume.shape, np.uint8)
    ln[50:54, 50:54, 60:64] = 1
    box = ln_region_box(Volume(ln, example_ct_volume.geometry), 50.0)
    full, kind = build_anatomy(example_ct_volume, example_ct, example_totalseg, "file")
    cropped, kind_cropped = build_anatomy(example_ct_volume, example_ct, example_totalseg, "file", box=box)
    assert kind == kind_cropped == "totalseg"
    _assert_within_tolerance(full.array[box], cropped.array)
    coarse_full, _ = build_anatomy(example_ct_volume, example_ct, source="coarse")
    coarse_crop, source = build_anatomy(example_ct_volume, example_ct, source="coarse", box=box)
    assert source == "coarse"
    np.testing.assert_array_equal(coarse_crop.array, coarse_full.array[box])   # coarse sees the whole CT
