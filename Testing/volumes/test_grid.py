"""The one grid rule for label maps: same grid as is, same voxels in another axis order/direction reoriented
exactly, anything else refused unless resampling onto the CT is asked for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from LNSynthLib.anatomy.build import build_anatomy
from LNSynthLib.cli.main import EXIT_USER_ERROR, main
from LNSynthLib.errors import InputDataError
from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.grid import exact_reorientation, labels_onto, reorient_onto, resample_onto
from LNSynthLib.volumes.io import read_volume, write_volume


def _stored_flipped_y(volume: Volume) -> Volume:
    """The same voxels stored with the y axis reversed (what TotalSegmentator on a DICOM folder writes)."""
    g = volume.geometry
    direction = g.direction_matrix.copy()
    direction[:, 1] *= -1                                        # y axis points the other way
    origin = g.index_to_physical(np.array([0.0, volume.shape[1] - 1, 0.0]))   # old last row is the new first
    return Volume(np.ascontiguousarray(volume.array[:, ::-1, :]), Geometry(g.spacing, tuple(origin),
                                                                          tuple(direction.ravel())))


def _stored_xy_swapped(volume: Volume) -> Volume:
    """The same voxels stored with the x and y axes exchanged (another axis order)."""
    g = volume.geometry
    direction = g.direction_matrix[:, [1, 0, 2]]
    spacing = (g.spacing[1], g.spacing[0], g.spacing[2])
    return Volume(np.ascontiguousarray(volume.array.transpose(0, 2, 1)),
                  Geometry(spacing, g.origin, tuple(direction.ravel())))


def test_flipped_totalseg_file_is_reoriented_exactly(tmp_path: Path, example_ct: Path, example_totalseg: Path,
                                                     example_ct_volume: Volume) -> None:
    labels = read_volume(example_totalseg)
    flipped_path = write_volume(_stored_flipped_y(labels), tmp_path / "seg_total_flipped_y.nii.gz")
    flipped = read_volume(flipped_path)
    # As in the issue: same shape, other origin along y, other direction; the old grid check refuses it.
    assert flipped.shape == labels.shape and flipped.geometry.origin[1] != labels.geometry.origin[1]
    assert flipped.geometry.direction != labels.geometry.direction
    assert not np.array_equal(flipped.array, labels.array)
    assert exact_reorientation(flipped, example_ct_volume) == ((0, 1, 2), (False, True, False))

    on_ct = labels_onto(flipped, example_ct_volume, flipped_path, example_ct)
    assert on_ct.array.dtype == labels.array.dtype
    assert np.array_equal(on_ct.array, labels.array)           # voxel-exact, no interpolation
    assert on_ct.geometry == example_ct_volume.geometry

    # The same through the anatomy builder used by `lnsynth anatomy` and `lnsynth prepare`.
    from_flipped, kind = build_anatomy(example_ct_volume, example_ct, flipped_path, "file")
    from_original, _ = build_anatomy(example_ct_volume, example_ct, example_totalseg, "file")
    assert kind == "totalseg" and np.array_equal(from_flipped.array, from_original.array)


def test_swapped_axes_are_reoriented_exactly(example_ct_volume: Volume, example_totalseg: Path) -> None:
    labels = read_volume(example_totalseg)
    swapped = _stored_xy_swapped(_stored_flipped_y(labels))
    assert swapped.shape != labels.shape
    back = reorient_onto(swapped, example_ct_volume)
    assert back is not None and np.array_equal(back.array, labels.array)


def test_other_grids_are_refused_unless_resampling_is_asked(tmp_path: Path, example_ct: Path,
                                                            example_totalseg: Path, example_ct_volume: Volume) -> None:
    labels = read_volume(example_totalseg)
    g = labels.geometry
    shifted = Volume(labels.array, Geometry(g.spacing, (g.origin[0] + 1.5, g.origin[1], g.origin[2]), g.direction))
    shifted_path = write_volume(shifted, tmp_path / "shifted.nii.gz")
    assert reorient_onto(read_volume(shifted_path), example_ct_volume) is None
    with pytest.raises(InputDataError, match="not on the same voxel grid") as info:
        labels_onto(read_volume(shifted_path), example_ct_volume, shifted_path, example_ct)
    assert "--resample-labels" in info.value.fix and info.value.path == shifted_path
    resampled = labels_onto(read_volume(shifted_path), example_ct_volume, shifted_path, example_ct, resample=True)
    assert resampled.shape == example_ct_volume.shape and resampled.array.dtype == np.uint8
    assert set(np.unique(resampled.array)) <= set(np.unique(labels.array))   # nearest neighbour: no new labels


def test_resample_onto_its_own_grid_is_the_identity(example_ct_volume: Volume) -> None:
    assert np.array_equal(resample_onto(example_ct_volume, example_ct_volume, "nearest").array,
                          example_ct_volume.array)
    linear = resample_onto(example_ct_volume, example_ct_volume, "linear")
    assert linear.array.dtype == np.float32 and np.array_equal(linear.array, example_ct_volume.array)


def test_cli_anatomy_from_a_flipped_file_and_the_refusal(tmp_path: Path, example_ct: Path, example_totalseg: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    labels = read_volume(example_totalseg)
    flipped = write_volume(_stored_flipped_y(labels), tmp_path / "flipped.nii.gz")
    out, ref = tmp_path / "anatomy.nii.gz", tmp_path / "anatomy_ref.nii.gz"
    assert main(["anatomy", "--ct", str(example_ct), "--labels", str(flipped), "--anatomy-source", "file",
                 "--out", str(out)]) == 0
    assert main(["anatomy", "--ct", str(example_ct), "--labels", str(example_totalseg), "--method", "labels",
                 "--out", str(ref)]) == 0                      # former spelling still works
    assert np.array_equal(read_volume(out).array, read_volume(ref).array)
    code = main(["anatomy", "--ct", str(example_ct), "--labels", str(flipped), "--out", str(tmp_path / "x.nii.gz")])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and "--anatomy-source totalseg makes the anatomy itself" in err
    assert "Fix: use --anatomy-source file" in err and "Traceback" not in err


def test_prepare_accepts_flipped_ln_mask_and_labels(tmp_path: Path, painted_example: dict[str, Path],
                                                    example_totalseg: Path) -> None:
    from LNSynthLib.cases import load_case
    from LNSynthLib.prepare import prepare_case

    ln_flipped = write_volume(_stored_flipped_y(read_volume(painted_example["ln"])), tmp_path / "ln_flipped.nii.gz")
    ts_flipped = write_volume(_stored_flipped_y(read_volume(example_totalseg)), tmp_path / "ts_flipped.nii.gz")
    a = load_case(prepare_case(painted_example["ct"], painted_example["ln"], tmp_path / "a", "c",
                               anatomy_path=example_totalseg))
    b = load_case(prepare_case(painted_example["ct"], ln_flipped, tmp_path / "b", "c", anatomy_path=ts_flipped))
    for name in ("ct", "anatomy", "ln"):
        assert np.array_equal(getattr(a, name).array, getattr(b, name).array), name
    assert a.meta["nodes"] == b.meta["nodes"]
