"""Copy-paste augmentation on phantom cases: readable by the export, nodes in fat near vessels, labels = pasted voxels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from LNSynthLib.anatomy.groups import BODY
from LNSynthLib.augment import copy_paste as cp
from LNSynthLib.cases import load_case
from LNSynthLib.conditions.transforms import organ_mask
from LNSynthLib.phantom import write_phantom_cases
from LNSynthLib.segmentation.nnunet import export as ex
from LNSynthLib.volumes.masks import label_components

SHAPE = (48, 64, 64)


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[Path]]:
    root = tmp_path_factory.mktemp("copy_paste")
    write_phantom_cases(root / "train", 3, seed=5, shape_zyx=SHAPE)
    written = cp.write_copy_paste_cases(root / "train", root / "cp", per_case=2, seed=0)
    return root / "train", root / "cp", written


def test_one_case_folder_per_real_case_and_k_in_the_synthetic_layout(cases):
    train, out, written = cases
    assert [f.name for f in written] == [f"phantom_{i:03d}{cp.COPY_PASTE_TAG}{k}" for i in range(3) for k in range(2)]
    for folder in written:
        meta = json.loads((folder / "case.json").read_text(encoding="utf-8"))
        assert meta["synthetic"] is True and meta["method"] == "copy-paste"
        assert meta["source_case"] == folder.name.split(cp.COPY_PASTE_TAG)[0]
        assert {r["op"] for r in meta["pasted"]} <= {"affine", "elastic", "none"}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]       # no temporary folder left


def test_pasted_nodes_lie_in_fat_near_vessels_and_labels_are_the_pasted_voxels(cases):
    train, _, written = cases
    placed_total = 0
    for folder in written:
        new, meta = load_case(folder), json.loads((folder / "case.json").read_text(encoding="utf-8"))
        real = load_case(train / meta["source_case"])
        assert new.ct.geometry.isclose(real.ct.geometry)
        assert np.array_equal(new.anatomy.array, real.anatomy.array)
        before, after = real.ln.array > 0, new.ln.array > 0
        assert (after | ~before).all()                                      # real nodes kept
        added = after & ~before
        placed = sum(r["placed"] for r in meta["pasted"])
        placed_total += placed
        assert meta["nodes_after"] == label_components(new.ln.array)[1] == meta["nodes_before"] + placed
        assert added.sum() == sum(r["voxels"] for r in meta["pasted"] if r["placed"])
        if not placed:
            assert np.array_equal(new.ct.array, real.ct.array)
            continue
        # In fat of the target: body label, fat HU in the real CT there, away from organs; node HU in the new CT.
        assert (real.anatomy.array[added] == BODY).all()
        organs = organ_mask(real.anatomy.array) & ~np.isin(real.anatomy.array, cp.VESSEL_LABELS)
        assert ndimage.distance_transform_cdt(~organs, metric="chessboard")[added].min() > cp.ORGAN_CLEARANCE_VOXELS
        assert real.ct.array[added].mean() <= cp.FAT_MAX_HU
        fat = real.ct.array[(real.anatomy.array == BODY) & ~before].mean()
        assert new.ct.array[added].mean() > (fat + real.ct.array[before].mean()) / 2   # node-like, not fat
        # Near a vessel: every pasted node's centre within NEAR_VESSEL_MM (+1 voxel of rounding).
        vessels = np.isin(real.anatomy.array, cp.VESSEL_LABELS)
        distance = ndimage.distance_transform_edt(~vessels)
        labels, count = label_components(added)
        for number in range(1, count + 1):
            centre = np.round(ndimage.center_of_mass(labels == number)).astype(int)
            assert distance[tuple(centre)] <= cp.NEAR_VESSEL_MM + 1.5
        # The CT changed only on and just around the pasted nodes, never on organs.
        near = ndimage.binary_dilation(added, iterations=int(np.ceil(cp.BLEND_VOXELS)) + 1)
        changed = new.ct.array != real.ct.array
        assert not (changed & ~near).any()
        assert not (changed & (real.anatomy.array != BODY)).any()
    assert placed_total >= len(written)            # the phantom has room: most nodes find a place


def test_export_takes_the_cases_unchanged(cases, tmp_path):
    train, out, written = cases
    dataset = ex.export_dataset(train, tmp_path / "Dataset105_RealCopyPaste", synthetic_root=out,
                                settings=ex.ExportSettings(strategy="real+synt", synt_per_case=2))
    manifest = json.loads((dataset / ex.MANIFEST).read_text(encoding="utf-8"))
    assert json.loads((dataset / "dataset.json").read_text(encoding="utf-8"))["numTraining"] == 3 + 6
    assert sorted(i["case_id"] for i in manifest["training"] if i["kind"] == "synt") == sorted(f.name for f in written)


def test_deterministic_resumable_and_seeded(cases, tmp_path):
    train, out, written = cases
    stamps = [(f / "ct.nii.gz").stat().st_mtime_ns for f in written]
    assert cp.write_copy_paste_cases(train, out, per_case=2, seed=0) == written
    assert [(f / "ct.nii.gz").stat().st_mtime_ns for f in written] == stamps       # complete cases skipped
    again = cp.write_copy_paste_cases(train, tmp_path / "again", per_case=1, seed=0)
    other = cp.write_copy_paste_cases(train, tmp_path / "other", per_case=1, seed=1)
    for a, b in zip(again, written[::2], strict=True):
        assert np.array_equal(load_case(a).ct.array, load_case(b).ct.array)
        assert np.array_equal(load_case(a).ln.array, load_case(b).ln.array)
    assert any(not np.array_equal(load_case(a).ln.array, load_case(c).ln.array) for a, c in zip(again, other, strict=True))


def test_cases_without_nodes_are_refused_with_the_fix(tmp_path):
    from LNSynthLib.cases import Case, save_case
    from LNSynthLib.errors import InputDataError

    case = load_case(write_phantom_cases(tmp_path / "src", 1, seed=1, shape_zyx=SHAPE)[0])
    save_case(Case("empty", case.ct, case.anatomy, type(case.ln)(np.zeros_like(case.ln.array), case.ln.geometry),
                   {"synthetic": False}), tmp_path / "train")
    with pytest.raises(InputDataError, match="no annotated lymph node"):
        cp.write_copy_paste_cases(tmp_path / "train", tmp_path / "out", per_case=1, seed=0)
