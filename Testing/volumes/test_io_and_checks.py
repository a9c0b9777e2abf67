"""Real files: format round trips keep geometry, DICOM reads with geometry, every bad input names its file."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from LNSynthLib.errors import InputDataError, OutputExistsError
from LNSynthLib.volumes.checks import check_ct, check_ln_mask, check_same_geometry
from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.io import read_volume, write_volume


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_round_trip_keeps_values_and_geometry(tmp_path, example_ct_volume, suffix):
    # An oblique direction and odd spacing make a lost or transposed geometry visible.
    c, s = np.cos(0.3), np.sin(0.3)
    geo = Geometry((0.7, 0.9, 2.5), (-12.5, 30.25, 101.0), (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
    vol = Volume(example_ct_volume.array[40:60, 20:70, 30:90].astype(np.int16), geo)
    back = read_volume(write_volume(vol, tmp_path / f"ct{suffix}"))
    assert np.array_equal(back.array, vol.array)
    assert back.geometry.isclose(geo, tol=1e-5)


def test_dicom_series_reads_with_geometry(shared_data):
    folder = shared_data / "dcmqi_ct3slice"
    vol = read_volume(folder)
    assert vol.shape == (3, 512, 512)
    assert np.allclose(vol.geometry.spacing[:2], (0.8105, 0.8105), atol=1e-3) or vol.geometry.spacing[0] < 1.0
    assert vol.geometry.spacing[2] == pytest.approx(1.0, abs=0.05)
    check_ct(vol, folder)   # a real CT in HU passes
    labels = read_volume(folder / "liver_spine_seg.nrrd")
    assert labels.shape == vol.shape and labels.geometry.isclose(vol.geometry, tol=1e-3)


def test_corrupt_and_truncated_files_name_the_file(tmp_path, example_ct):
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(Path(example_ct).read_bytes()[:5000])
    garbage = tmp_path / "garbage.nii.gz"
    garbage.write_bytes(gzip.compress(b"this is not a nifti header" * 20))
    for bad in (truncated, garbage, tmp_path / "missing.nii.gz"):
        with pytest.raises(InputDataError) as err:
            read_volume(bad)
        assert str(bad) in str(err.value) and "Fix:" in str(err.value)


def test_existing_output_is_never_replaced(tmp_path, example_ct_volume):
    path = write_volume(example_ct_volume, tmp_path / "ct.nii.gz")
    with pytest.raises(OutputExistsError) as err:
        write_volume(example_ct_volume, path)
    assert str(path) in str(err.value)


def _vol(arr: np.ndarray) -> Volume:
    return Volume(arr, Geometry((1.0, 1.0, 1.0)))


@pytest.mark.parametrize("arr, words", [
    (np.random.default_rng(0).integers(0, 256, (8, 16, 16)).astype(np.uint8), "Hounsfield"),    # 8-bit image
    (np.random.default_rng(0).uniform(0, 3000, (8, 16, 16)).astype(np.float32), "Hounsfield"),  # MR-like
    (np.full((8, 16, 16), np.nan, np.float32), "NaN"),
    (np.full((8, 16, 16), -1000, np.int16), "contrast"),
    (np.zeros((8, 16, 16), bool), "not a CT"),
])
def test_non_ct_is_rejected_with_file_name(arr, words):
    if words == "NaN":
        arr = np.where(np.arange(arr.size).reshape(arr.shape) % 2 == 0, -1000.0, np.nan).astype(np.float32)
    with pytest.raises(InputDataError) as err:
        check_ct(_vol(arr), "/data/scan.nii.gz")
    assert "/data/scan.nii.gz" in str(err.value) and words in str(err.value)


def test_real_ct_passes_check(example_ct_volume, example_ct):
    check_ct(example_ct_volume, example_ct)


def test_geometry_mismatch_names_both_files(example_ct_volume):
    shifted = Volume(example_ct_volume.array, Geometry(example_ct_volume.geometry.spacing,
                                                       (0.0, 0.0, 0.0), example_ct_volume.geometry.direction))
    with pytest.raises(InputDataError) as err:
        check_same_geometry(shifted, example_ct_volume, "ln.nii.gz", "ct.nii.gz")
    assert "ln.nii.gz" in str(err.value) and "ct.nii.gz" in str(err.value) and "origin" in str(err.value)
    cropped = Volume(example_ct_volume.array[:-1], example_ct_volume.geometry)
    with pytest.raises(InputDataError, match="size"):
        check_same_geometry(cropped, example_ct_volume, "ln.nii.gz", "ct.nii.gz")
    check_same_geometry(example_ct_volume, example_ct_volume, "a", "b")


def test_empty_ln_mask_and_mask_outside_body(example_anatomy):
    empty = Volume(np.zeros(example_anatomy.shape, np.uint8), example_anatomy.geometry)
    with pytest.raises(InputDataError) as err:
        check_ln_mask(empty, example_anatomy, "ln_empty.nii.gz")
    assert "ln_empty.nii.gz" in str(err.value) and "empty" in str(err.value)
    outside = np.zeros(example_anatomy.shape, np.uint8)
    outside[2:6, 2:6, 2:6] = 1   # a corner of the volume: air
    assert np.all(example_anatomy.array[2:6, 2:6, 2:6] == 0)
    with pytest.raises(InputDataError) as err:
        check_ln_mask(Volume(outside, example_anatomy.geometry), example_anatomy, "ln_air.nii.gz")
    assert "ln_air.nii.gz" in str(err.value) and "outside the body" in str(err.value)
