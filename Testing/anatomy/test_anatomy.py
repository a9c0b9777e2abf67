"""Grouping table, TotalSegmentator offline guard, coarse fallback and LN statistics on real data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from totalsegmentator.map_to_binary import class_map

from LNSynthLib.anatomy.build import anatomy_from_labels, guess_source
from LNSynthLib.anatomy.fallback import coarse_anatomy
from LNSynthLib.anatomy.groups import (
    LABEL_GROUPS_FILE,
    LABEL_NAMES,
    NUM_LABELS,
    load_label_groups,
    totalseg_to_anatomy,
)
from LNSynthLib.anatomy.lymph_nodes import lymph_node_components
from LNSynthLib.anatomy.totalseg import check_weights, run_totalsegmentator, weights_available
from LNSynthLib.errors import InputDataError, MissingWeightsError
from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.io import read_volume


def test_table_has_14_labels_with_reasons_and_only_real_class_names():
    groups = load_label_groups()
    assert [g.value for g in groups] == list(range(NUM_LABELS)) == list(range(14))
    assert LABEL_NAMES[0] == "air" and LABEL_NAMES[1] == "body"
    names = set(class_map["total"].values())
    listed = [c for g in groups for c in g.classes]
    assert len(listed) == len(set(listed))
    assert set(listed) <= names, set(listed) - names
    assert set(listed) == names          # every TotalSegmentator class has a home
    assert all(len(g.why) > 40 for g in groups)
    raw = json.loads(LABEL_GROUPS_FILE.read_text(encoding="utf-8"))
    assert not any(isinstance(c, int) for g in raw["labels"] for c in g["classes"])  # names, never ids


def test_real_totalsegmentator_output_gives_all_14_labels(example_anatomy, example_totalseg, example_ct_volume):
    counts = np.bincount(example_anatomy.array.ravel(), minlength=NUM_LABELS)
    assert np.all(counts > 0), dict(zip(LABEL_NAMES, counts, strict=True))
    ts = read_volume(example_totalseg).array
    liver_id = {v: k for k, v in class_map["total"].items()}["liver"]
    assert np.all(example_anatomy.array[ts == liver_id] == LABEL_NAMES.index("liver"))
    # Unlabelled voxels: air outside, body (fat) inside.
    hu = example_ct_volume.array
    assert np.all(example_anatomy.array[(ts == 0) & (hu > -200) & (hu < 0)][::7] <= 1)
    assert example_anatomy.array[0, 0, 0] == 0
    assert guess_source(read_volume(example_totalseg)) == "totalseg"
    assert guess_source(example_anatomy) == "anatomy14"


def test_anatomy_from_labels_rejects_wrong_grid_and_values(example_ct_volume):
    wrong = Volume(np.zeros((3, 3, 3), np.uint8), Geometry((1, 1, 1)))
    with pytest.raises(InputDataError) as err:
        anatomy_from_labels(wrong, example_ct_volume, path="seg.nii.gz", ct_path="ct.nii.gz")
    assert "seg.nii.gz" in str(err.value)
    bad = Volume(np.full(example_ct_volume.shape, 200, np.uint8), example_ct_volume.geometry)
    with pytest.raises(InputDataError, match="not a TotalSegmentator"):
        anatomy_from_labels(bad, example_ct_volume, "totalseg", path="seg.nii.gz")
    with pytest.raises(InputDataError, match="0..13"):
        anatomy_from_labels(bad, example_ct_volume, "anatomy14", path="seg.nii.gz")
    with pytest.raises(ValueError):
        totalseg_to_anatomy(np.zeros((2, 2, 2), np.uint8), np.zeros((2, 2, 3)))


def test_missing_weights_message_is_exact_and_nothing_is_downloaded(tmp_path, example_ct):
    weights = tmp_path / "ts_home"
    weights.mkdir()
    assert not weights_available(weights)
    with pytest.raises(MissingWeightsError) as err:
        run_totalsegmentator(example_ct, tmp_path / "out.nii.gz", device="cpu", weights_dir=weights)
    root = weights / "nnunet" / "results"
    msg = str(err.value)
    assert msg.startswith(f"{root}: TotalSegmentator weights for the fast (3 mm) 'total' task are missing: "
                          "Task 297 (Dataset297_TotalSegmentator_total_3mm_1559subj); they must be in ")
    assert "totalseg_import_weights -i <zip>" in msg and f"TOTALSEG_HOME_DIR={weights}" in msg
    assert "Dataset297_TotalSegmentator_total_3mm_1559subj.zip" in msg
    assert list(weights.iterdir()) == [] and not (tmp_path / "out.nii.gz").exists()
    with pytest.raises(MissingWeightsError, match="Task 291 .*Task 295"):
        check_weights(weights, fast=False)
    # A folder with the dataset's final checkpoint counts as installed.
    ckpt = root / "Dataset297_TotalSegmentator_total_3mm_1559subj" / "trainer" / "fold_0" / "checkpoint_final.pth"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"x")
    assert weights_available(weights)


def test_coarse_fallback_on_real_ct_is_plausible(example_ct_volume, example_anatomy):
    coarse = coarse_anatomy(example_ct_volume).array
    ref = example_anatomy.array
    assert set(np.unique(coarse)) <= {0, 1, 11, 13}
    assert ((coarse == 0) == (ref == 0)).mean() > 0.97          # air agrees with the TotalSegmentator-based map
    bone_c, bone_r = coarse == 11, ref == 11
    assert 2 * (bone_c & bone_r).sum() / (bone_c.sum() + bone_r.sum()) > 0.75
    body_r = ref > 0
    assert ((coarse > 0) & body_r).sum() / body_r.sum() > 0.95


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.7, 0.7, 2.0)])
def test_node_sizes_on_spheres_and_ellipsoids_of_known_size(spacing):
    sx, sy, sz = spacing
    z, y, x = np.ogrid[:60, :90, :90]
    pz, py, px = z * sz, y * sy, x * sx
    sphere = (pz - 30) ** 2 + (py - 20) ** 2 + (px - 20) ** 2 <= 6.0 ** 2       # r = 6 mm
    # Ellipsoid rotated 30° in-plane: semi-axes 9 mm (long) and 4 mm (short).
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    dx, dy = px - 45, py - 45
    u, v = c * dx + s * dy, -s * dx + c * dy
    ellipsoid = (u / 9.0) ** 2 + (v / 4.0) ** 2 + ((pz - 60) / 5.0) ** 2 <= 1.0
    mask = (sphere | ellipsoid).astype(np.uint8)
    geo = Geometry(spacing, (-3.0, 7.0, 11.0))
    nodes = lymph_node_components(Volume(mask, geo))
    assert len(nodes) == 2
    sph = min(nodes, key=lambda n: abs(n.centroid_lps[0] - (-3.0 + 20)))
    ell = max(nodes, key=lambda n: n.long_axis_mm)
    tol = 1.5 * max(sx, sy)
    assert sph.short_axis_mm == pytest.approx(12.0, abs=tol) and sph.long_axis_mm == pytest.approx(12.0, abs=tol)
    assert sph.volume_mm3 == pytest.approx(4 / 3 * np.pi * 6.0 ** 3, rel=0.1)
    assert sph.voxel_count * sx * sy * sz == pytest.approx(sph.volume_mm3)
    assert np.allclose(sph.centroid_lps, (-3.0 + 20, 7.0 + 20, 11.0 + 30), atol=0.3)
    assert ell.long_axis_mm == pytest.approx(18.0, abs=tol) and ell.short_axis_mm == pytest.approx(8.0, abs=tol)


def test_stored_totalsegmentator_classes_are_the_installed_packages():
    """The class ids kept as data (so grouping needs no TotalSegmentator import) match the pinned package."""
    import json
    from importlib.metadata import version

    from totalsegmentator.map_to_binary import class_map

    from LNSynthLib.anatomy.groups import TOTALSEG_CLASSES_FILE, totalseg_class_ids

    stored = json.loads(TOTALSEG_CLASSES_FILE.read_text(encoding="utf-8"))
    assert stored["totalsegmentator"] == version("totalsegmentator")
    assert totalseg_class_ids() == {name: int(i) for i, name in class_map["total"].items()}
