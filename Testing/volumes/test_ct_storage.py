"""Prepared CTs stored as int16 HU: round trip, tolerance against float32, old float32 cases still load."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from LNSynthLib.anatomy.body import SLAB_SLICES, _fill_slab, body_mask, fill_holes_in_plane, largest_component
from LNSynthLib.cases import (
    CT_FILE,
    INT16_HU_TOLERANCE,
    META_FILE,
    PREPARED_CT_DTYPE,
    Case,
    load_case,
    save_case,
)
from LNSynthLib.prepare import prepare_case
from LNSynthLib.segmentation.leakage import _array_digest
from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.io import read_volume
from LNSynthLib.volumes.preprocess import PreprocessSettings

GEO = Geometry((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))


def _case(ct: np.ndarray, case_id: str = "c1") -> Case:
    ln = np.zeros(ct.shape, np.uint8)
    ln[4:7, 4:7, 4:7] = 1
    return Case(case_id, Volume(ct, GEO), Volume(np.ones(ct.shape, np.uint8), GEO), Volume(ln, GEO), {"k": 1})


def test_int16_round_trip_within_tolerance_and_dtype_recorded(tmp_path):
    ct = np.random.default_rng(0).uniform(-1100.0, 3000.0, (12, 10, 8)).astype(np.float32)
    ct[0, 0, :2] = (-40000.0, 40000.0)                        # outside int16: clipped, not wrapped
    folder = save_case(_case(ct), tmp_path, ct_dtype="int16")
    assert read_volume(folder / CT_FILE).array.dtype == np.int16
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["ct_dtype"] == "int16" and meta["k"] == 1
    loaded = load_case(folder)
    assert loaded.ct.array.dtype == np.float32                 # every reader still gets float32 HU
    inside = np.ones(ct.shape, bool)
    inside[0, 0, :2] = False
    assert np.abs(loaded.ct.array - ct)[inside].max() <= INT16_HU_TOLERANCE
    assert loaded.ct.array[0, 0, :2].tolist() == [-32768.0, 32767.0]


def test_float32_case_without_dtype_in_meta_still_loads(tmp_path):
    """A case written before `ct_dtype` existed: float32 CT, no `ct_dtype` key."""
    ct = np.random.default_rng(1).uniform(-1000.0, 1000.0, (10, 10, 10)).astype(np.float32)
    folder = save_case(_case(ct), tmp_path)
    meta = json.loads((folder / META_FILE).read_text())
    assert meta.pop("ct_dtype") == "float32"
    (folder / META_FILE).write_text(json.dumps(meta))
    loaded = load_case(folder)
    assert loaded.ct.array.dtype == np.float32 and np.array_equal(loaded.ct.array, ct)   # exact, as before


def test_unknown_dtype_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="ct_dtype"):
        save_case(_case(np.zeros((10, 10, 10), np.float32)), tmp_path, ct_dtype="float16")
    assert not (tmp_path / "c1").exists()


def test_leakage_digest_ignores_storage_type(tmp_path):
    ct = np.rint(np.random.default_rng(2).uniform(-1000, 1000, (10, 10, 10))).astype(np.float32)
    a = save_case(_case(ct, "a"), tmp_path, ct_dtype="float32")
    b = save_case(_case(ct, "b"), tmp_path, ct_dtype="int16")
    assert _array_digest(a / CT_FILE) == _array_digest(b / CT_FILE)


def test_prepare_stores_int16_close_to_float32(tmp_path, painted_example, example_totalseg):
    """`lnsynth prepare` writes int16 HU; against the float32 result the CT differs by rounding only."""
    folder = prepare_case(painted_example["ct"], painted_example["ln"], tmp_path, "p1",
                          anatomy_path=example_totalseg, settings=PreprocessSettings.test())
    meta = json.loads((folder / META_FILE).read_text())
    assert PREPARED_CT_DTYPE == "int16" and meta["ct_dtype"] == "int16"
    assert read_volume(folder / CT_FILE).array.dtype == np.int16
    from LNSynthLib.prepare import prepare_volumes
    from LNSynthLib.volumes.io import read_ct

    ct = read_ct(painted_example["ct"])
    ln = read_volume(painted_example["ln"])
    anatomy = load_case(folder).anatomy
    full_anatomy = Volume(np.zeros(ct.shape, np.uint8), ct.geometry)
    reference = prepare_volumes(ct, full_anatomy, ln, PreprocessSettings.test())[0]   # float32, not rounded
    stored = load_case(folder).ct
    assert stored.shape == reference.shape == anatomy.shape
    assert np.abs(stored.array - reference.array).max() <= INT16_HU_TOLERANCE


def _scipy_body(ct: np.ndarray) -> np.ndarray:
    """The former scipy implementation of the largest component, as the reference."""
    tissue = ct > -400
    labels, count = ndimage.label(tissue)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def test_largest_component_matches_scipy(example_ct_volume):
    rng = np.random.default_rng(3)
    blobs = ndimage.gaussian_filter(rng.standard_normal((40, 50, 60)), 2) > 0.05   # many touching regions
    ct = np.where(blobs, 0.0, -1000.0)
    for volume in (ct, example_ct_volume.array):
        assert np.array_equal(largest_component(volume > -400), _scipy_body(volume))
    assert body_mask(np.full((4, 4, 4), -1000.0)).sum() == 0


def test_hole_filling_in_slabs_equals_one_pass():
    rng = np.random.default_rng(4)
    mask = ndimage.gaussian_filter(rng.standard_normal((3 * SLAB_SLICES + 5, 40, 30)), 1.5) > -0.3
    filled = fill_holes_in_plane(mask)
    assert np.array_equal(filled, _fill_slab(mask)) and filled.sum() > mask.sum()   # holes were there to fill


def test_integer_ct_resamples_like_its_float32_copy():
    """Linear resampling of an int16 CT gives float32 values equal to resampling its float32 copy."""
    from LNSynthLib.volumes.preprocess import resample

    geo = Geometry((0.8, 0.7, 1.5), (3.0, -2.0, 5.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    ct = np.random.default_rng(5).integers(-1024, 2000, (20, 24, 22)).astype(np.int16)
    a = resample(Volume(ct, geo), (1.0, 1.0, 1.0), "linear")
    b = resample(Volume(ct.astype(np.float32), geo), (1.0, 1.0, 1.0), "linear")
    assert a.array.dtype == np.float32 and np.array_equal(a.array, b.array) and a.geometry == b.geometry
