"""nnU-Net dataset export (checked by nnU-Net's own integrity check) and paste-back of synthetic patches."""

from __future__ import annotations

import json

import numpy as np
import pytest

from LNSynthLib.cases import list_cases
from LNSynthLib.errors import InputDataError, OutputExistsError
from LNSynthLib.segmentation.nnunet import export as ex
from LNSynthLib.segmentation.paste import border_weight, paste_patch
from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.io import read_volume, write_volume


@pytest.fixture
def verify_with_nnunet():  # noqa: ANN201
    """nnU-Net's own `verify_dataset_integrity`, with its worker pools."""
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    return lambda dataset_dir: verify_dataset_integrity(str(dataset_dir), num_processes=1)


@pytest.mark.parametrize("strategy,per_case,expected", [("real", 1, 4), ("synt", 2, 8), ("real+synt", 1, 8)])
def test_export_strategies_pass_nnunet_integrity_check(phantom_root, phantom_test_root, synthetic_root, tmp_path,
                                                       verify_with_nnunet, strategy, per_case, expected):
    out = tmp_path / "Dataset001_T"
    ex.export_dataset(phantom_root, out, synthetic_root=synthetic_root, test_root=phantom_test_root,
                      settings=ex.ExportSettings(strategy=strategy, synt_per_case=per_case))
    meta = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
    assert meta["channel_names"] == {"0": "CT"} and meta["labels"] == {"background": 0, "lymph_node": 1}
    assert meta["numTraining"] == expected and meta["file_ending"] == ".nii.gz"
    assert len(list((out / "imagesTr").glob("*_0000.nii.gz"))) == expected
    assert len(list((out / "labelsTs").glob("*.nii.gz"))) == 2
    verify_with_nnunet(out)
    kinds = {i["kind"] for i in json.loads((out / ex.MANIFEST).read_text(encoding="utf-8"))["training"]}
    assert kinds == {"real": {"real"}, "synt": {"synt"}, "real+synt": {"real", "synt"}}[strategy]


def test_integrity_check_catches_a_bad_label(phantom_root, tmp_path, verify_with_nnunet):
    out = ex.export_dataset(phantom_root, tmp_path / "Dataset007_T", settings=ex.ExportSettings(strategy="real"))
    label = sorted((out / "labelsTr").glob("*.nii.gz"))[0]
    bad = read_volume(label)
    bad.array[bad.array > 0] = 2                               # a label dataset.json does not declare
    label.unlink()
    write_volume(bad, label)
    with pytest.raises(RuntimeError, match="unexpected labels"):
        verify_with_nnunet(out)


def test_test_crop_uses_the_smaller_margin(phantom_root, phantom_test_root, tmp_path):
    settings = ex.ExportSettings(strategy="real", train_margin_mm=100, test_margin_mm=5)
    out = ex.export_dataset(phantom_root, tmp_path / "Dataset002_T", test_root=phantom_test_root, settings=settings)
    case = list_cases(phantom_test_root)[0]
    full = read_volume(case / "ln.nii.gz")
    cropped = read_volume(out / "labelsTs" / f"{case.name}.nii.gz")
    assert cropped.array.sum() == full.array.sum()           # every node kept
    assert np.prod(cropped.shape) < np.prod(full.shape)      # but a tighter box
    # Physical position kept: the first LN voxel maps to the same LPS point in both.
    first = np.argwhere(cropped.array > 0)[0]
    point = cropped.geometry.index_to_physical(first[::-1])
    back = np.round(full.geometry.physical_to_index(point)).astype(int)[::-1]
    assert full.array[tuple(back)] == 1


def test_export_resumes_and_refuses_other_settings(phantom_root, tmp_path):
    out = tmp_path / "Dataset003_T"
    ex.export_dataset(phantom_root, out, settings=ex.ExportSettings(strategy="real"))
    stamp = (out / "dataset.json").stat().st_mtime_ns
    ex.export_dataset(phantom_root, out, settings=ex.ExportSettings(strategy="real"))
    assert (out / "dataset.json").stat().st_mtime_ns == stamp
    with pytest.raises(OutputExistsError):
        ex.export_dataset(phantom_root, out, settings=ex.ExportSettings(strategy="real", train_margin_mm=20))


def test_export_names_missing_synthetic_data(phantom_root, synthetic_root, tmp_path):
    with pytest.raises(InputDataError, match="synthetic"):
        ex.export_dataset(phantom_root, tmp_path / "D", settings=ex.ExportSettings(strategy="synt"))
    with pytest.raises(InputDataError, match="requested"):
        ex.export_dataset(phantom_root, tmp_path / "D", synthetic_root=synthetic_root,
                          settings=ex.ExportSettings(strategy="real+synt", synt_per_case=5))


def test_splits_group_synthetic_cases_with_their_source(phantom_root, synthetic_root, tmp_path):
    out = ex.export_dataset(phantom_root, tmp_path / "Dataset004_T", synthetic_root=synthetic_root,
                            settings=ex.ExportSettings(strategy="real+synt", synt_per_case=2))
    splits = json.loads(ex.write_splits(out, tmp_path / "pre").read_text(encoding="utf-8"))
    assert len(splits) == 4
    for split in splits:
        assert split["val"] and all("_synt_" not in c for c in split["val"])      # validated on real cases
        for synt in (c for c in split["train"] if "_synt_" in c):
            assert synt.split("_synt_")[0] not in split["val"]                   # no leak from a val case


def _grid(shape, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)):
    return Geometry(spacing, origin)


def test_paste_inside_is_patch_outside_is_ct_border_is_smooth():
    ct = Volume(np.full((40, 40, 40), -100.0, np.float32), _grid((40, 40, 40)))
    ln_ct = Volume(np.zeros((40, 40, 40), np.uint8), ct.geometry)
    ln_ct.array[2:4, 2:4, 2:4] = 1                          # a real node far from the patch
    patch_geo = ct.geometry.shifted((10, 10, 10))
    patch = Volume(np.full((20, 20, 20), 50.0, np.float32), patch_geo)
    ln_patch = Volume(np.zeros((20, 20, 20), np.uint8), patch_geo)
    ln_patch.array[8:12, 8:12, 8:12] = 1
    out_ct, out_ln = paste_patch(ct, patch, ln_ct, ln_patch, blend_mm=4.0)
    assert out_ct.geometry == ct.geometry and out_ct.shape == ct.shape
    assert np.all(out_ct.array[15:25, 15:25, 15:25] == 50.0)          # inside: the patch exactly
    assert np.all(out_ct.array[:9] == -100.0)                          # outside: the CT exactly
    line = out_ct.array[20, 20, 5:35]
    steps = np.diff(line)
    assert np.all(steps[:15] >= 0) and np.abs(steps).max() < 150 * 0.5   # monotone ramp, no jump of full height
    assert out_ln.array[2:4, 2:4, 2:4].all() and out_ln.array[18:22, 18:22, 18:22].all()
    assert out_ln.array.sum() == 8 + 64


def test_paste_rejects_a_patch_outside_the_ct():
    ct = Volume(np.zeros((10, 10, 10), np.float32), _grid((10, 10, 10)))
    far = Geometry((1.0, 1.0, 1.0), (500.0, 500.0, 500.0))
    patch = Volume(np.zeros((4, 4, 4), np.float32), far)
    with pytest.raises(InputDataError, match="outside"):
        paste_patch(ct, patch, Volume(np.zeros((10, 10, 10), np.uint8), ct.geometry),
                    Volume(np.zeros((4, 4, 4), np.uint8), far))


def test_border_weight_respects_anisotropic_spacing():
    w = border_weight((6, 20, 20), (1.0, 1.0, 3.0), blend_mm=3.0)
    # Along z (3 mm voxels) the edge voxel centre is 1.5 mm in; along x (1 mm) it is 0.5 mm in.
    assert w[0, 10, 10] == pytest.approx(0.5)
    assert w[3, 10, 0] < w[0, 10, 10]
    assert w[3, 10, 10] == 1.0


def test_pasted_export_puts_patch_into_full_context(phantom_root, synthetic_root, tmp_path, verify_with_nnunet):
    out = ex.export_dataset(phantom_root, tmp_path / "Dataset005_T", synthetic_root=synthetic_root,
                            settings=ex.ExportSettings(strategy="synt", synt_per_case=1, paste_into_ct=True))
    synt = sorted((out / "imagesTr").glob("*_0000.nii.gz"))[0]
    pasted = read_volume(synt)
    patch = read_volume(synthetic_root / synt.name.replace("_0000.nii.gz", "") / "ct.nii.gz")
    assert np.prod(pasted.shape) > np.prod(patch.shape)       # full abdominal context around the patch
    verify_with_nnunet(out)


def test_one_folder_with_real_and_synthetic_cases(phantom_root, synthetic_root, tmp_path):
    mixed = tmp_path / "session_cases"
    mixed.mkdir()
    for folder in [*list_cases(phantom_root), *list_cases(synthetic_root)]:
        (mixed / folder.name).symlink_to(folder, target_is_directory=True)
    out = ex.export_dataset(mixed, tmp_path / "Dataset006_T",
                            settings=ex.ExportSettings(strategy="real+synt", synt_per_case=None))
    training = json.loads((out / ex.MANIFEST).read_text(encoding="utf-8"))["training"]
    assert sum(i["kind"] == "real" for i in training) == 4 and sum(i["kind"] == "synt" for i in training) == 8
