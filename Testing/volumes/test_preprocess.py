"""Preprocessing: LN box margins clamp, 1 mm resampling keeps physical positions, window inverse is exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from LNSynthLib.anatomy.lymph_nodes import lymph_node_components
from LNSynthLib.errors import InputDataError
from LNSynthLib.phantom import generate_phantom
from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.preprocess import (
    PreprocessSettings,
    crop,
    hu_to_unit,
    ln_region_box,
    resample,
    unit_to_hu,
)


def _mask(shape, box, spacing=(1.0, 1.0, 1.0)):
    arr = np.zeros(shape, np.uint8)
    arr[box] = 1
    return Volume(arr, Geometry(spacing, (10.0, -20.0, 30.0)))


def test_box_grows_by_margin_in_voxels_per_axis_and_clamps():
    ln = _mask((50, 60, 70), (slice(20, 25), slice(30, 32), slice(2, 4)), spacing=(2.0, 1.0, 5.0))
    box = ln_region_box(ln, margin_mm=10.0)
    # z spacing 5 mm -> 2 voxels; y 1 mm -> 10 voxels; x 2 mm -> 5 voxels, clamped at 0.
    assert box == (slice(18, 27), slice(20, 42), slice(0, 9))
    whole = ln_region_box(ln, margin_mm=1000.0)
    assert whole == (slice(0, 50), slice(0, 60), slice(0, 70))
    with pytest.raises(InputDataError, match="empty"):
        ln_region_box(Volume(np.zeros((4, 4, 4), np.uint8), Geometry((1, 1, 1))), 5.0)


def test_settings_follow_the_paper():
    assert PreprocessSettings.train().margin_mm == 100.0
    assert PreprocessSettings.test().margin_mm == 50.0
    s = PreprocessSettings()
    assert s.spacing == 1.0 and s.window == (-120.0, 240.0)
    assert PreprocessSettings.test(spacing=1.5).spacing == 1.5


def test_window_inverse_exact_inside_window_and_clipped_outside():
    hu = np.linspace(-120, 240, 1001).astype(np.float64)
    unit = hu_to_unit(hu)
    assert unit.min() == pytest.approx(-1.0) and unit.max() == pytest.approx(1.0)
    assert np.allclose(unit_to_hu(unit), hu, atol=1e-9)
    assert np.array_equal(hu_to_unit(np.array([-1000.0, 3000.0])), np.array([-1.0, 1.0]))
    t = torch.tensor([-500.0, 60.0, 500.0])
    assert torch.allclose(hu_to_unit(t), torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.allclose(unit_to_hu(hu_to_unit(torch.tensor([-100.0, 0.0, 200.0]))),
                          torch.tensor([-100.0, 0.0, 200.0]), atol=1e-4)
    other = (-50.0, 50.0)
    assert np.allclose(unit_to_hu(hu_to_unit(np.array([-50.0, 0.0, 25.0]), other), other), [-50, 0, 25])


def test_resample_to_1mm_and_centroids_stay_put():
    p = generate_phantom(seed=2, shape_zyx=(32, 48, 48), spacing_xyz=(2.5, 2.5, 3.0), n_nodes=3)
    before = lymph_node_components(p.ln)
    box = ln_region_box(p.ln, margin_mm=15.0)
    cropped = crop(p.ln, box)
    after_crop = lymph_node_components(cropped)
    for a, b in zip(before, after_crop, strict=True):
        assert np.allclose(a.centroid_lps, b.centroid_lps, atol=1e-6)
    iso = resample(cropped, (1.0, 1.0, 1.0), "nearest")
    assert iso.geometry.spacing == (1.0, 1.0, 1.0)
    assert iso.array.dtype == np.uint8
    for a, b in zip(before, lymph_node_components(iso), strict=True):
        assert np.allclose(a.centroid_lps, b.centroid_lps, atol=1.0)   # within one new voxel
    # Physical extent is kept: outer voxel edges aligned.
    assert iso.shape[0] == round(cropped.shape[0] * 3.0)
    ct = resample(crop(p.ct, box), (1.0, 1.0, 1.0), "linear")
    assert ct.array.dtype == np.float32 and ct.shape == iso.shape and ct.geometry == iso.geometry


def test_resample_keeps_oblique_direction_and_same_spacing_is_a_copy():
    c, s = np.cos(0.4), np.sin(0.4)
    geo = Geometry((0.8, 0.8, 2.0), (5.0, 6.0, 7.0), (c, -s, 0, s, c, 0, 0, 0, 1))
    arr = np.zeros((10, 20, 20), np.float32)
    arr[4:6, 8:12, 9:13] = 100
    vol = Volume(arr, geo)
    out = resample(vol, (1.0, 1.0, 1.0))
    assert out.geometry.direction == geo.direction
    w_in = np.argwhere(arr > 50).mean(axis=0)[::-1]
    w_out = np.argwhere(out.array > 50).mean(axis=0)[::-1]
    assert np.allclose(geo.index_to_physical(w_in), out.geometry.index_to_physical(w_out), atol=1.0)
    same = resample(vol, geo.spacing)
    assert same.geometry == geo and np.array_equal(same.array, arr) and same.array is not arr
    with pytest.raises(ValueError):
        resample(vol, (1, 1, 1), "cubic")


def test_crop_copies_unless_asked_for_a_view() -> None:
    # prepare frees the full CT after cropping (a copy); the grouping only reads its crop (a view, no second CT).
    from LNSynthLib.volumes.geometry import Geometry, Volume
    from LNSynthLib.volumes.preprocess import crop

    volume = Volume(np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6), Geometry((1.0, 1.0, 2.0), (0.0, 0.0, 0.0)))
    box = (slice(1, 3), slice(0, 5), slice(2, 6))
    copied, viewed = crop(volume, box), crop(volume, box, copy=False)
    assert not np.shares_memory(copied.array, volume.array) and np.shares_memory(viewed.array, volume.array)
    np.testing.assert_array_equal(copied.array, viewed.array)
    assert copied.geometry == viewed.geometry
