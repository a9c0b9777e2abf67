"""Paper 002's per-organ Dice: TotalSegmentator labels of synthetic images against their condition."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from LNSynthLib.anatomy.groups import load_label_groups, totalseg_class_ids, totalseg_to_anatomy
from LNSynthLib.cases import CT_FILE, Case, list_cases, load_case, save_case
from LNSynthLib.report import organ_eval
from LNSynthLib.report.organ_eval import ORGAN_NAMES, case_organ_dice, evaluate_organ_dice, mean_organ_dice
from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.io import read_volume, write_volume

IDS = totalseg_class_ids()


def test_case_organ_dice_by_hand():
    # Condition: liver (2) in z 0-1 (32 voxels), spleen (3) in z 3 (16 voxels). TotalSegmentator finds the liver
    # only in z 0 (16 voxels), the whole spleen, and a kidney the condition does not hold (not scored).
    condition = np.ones((4, 4, 4), np.uint8)
    condition[:2], condition[3] = 2, 3
    ts = np.zeros((4, 4, 4), np.int64)
    ts[0], ts[3] = IDS["liver"], IDS["spleen"]
    ts[2, 0, 0] = IDS["kidney_left"]
    ct = np.full((4, 4, 4), 40.0)
    assert case_organ_dice(ts, ct, condition) == {"liver": pytest.approx(2 * 16 / 48), "spleen": 1.0}
    # The gallbladder belongs to the liver group: found gallbladder voxels count for the liver.
    ts[1] = IDS["gallbladder"]
    assert case_organ_dice(ts, ct, condition)["liver"] == 1.0


def test_mean_organ_dice_over_the_images_that_hold_each_organ():
    means, counts = mean_organ_dice([{"liver": 1.0, "spleen": 0.5}, {"liver": 0.5}, {}])
    assert means == {"liver": 0.75, "spleen": 0.5} and counts == {"liver": 2, "spleen": 1}


@pytest.fixture(scope="module")
def real_example(shared_data: Path) -> tuple[Volume, Volume]:
    ct, seg = (shared_data / "totalseg_example" / name for name in ("example_ct_sm.nii.gz", "example_seg.nii.gz"))
    if not ct.exists() or not seg.exists():
        pytest.skip("the small TotalSegmentator example is not in the shared data")
    return read_volume(ct), read_volume(seg)


def _drop_gallbladder(ts: np.ndarray) -> np.ndarray:
    out = ts.copy()
    out[out == IDS["gallbladder"]] = 0
    return out


def test_organ_dice_of_a_real_totalsegmentator_output(real_example):
    ct, seg = real_example
    ts = seg.array.astype(np.int64)
    condition = totalseg_to_anatomy(ts, ct.array)
    same = case_organ_dice(ts, ct.array, condition)
    assert set(same) == set(ORGAN_NAMES) and all(v == 1.0 for v in same.values())   # all 12 groups present
    # Without the gallbladder: liver group L voxels in the condition, g of them gallbladder.
    liver, gall = int((condition == 2).sum()), int((ts == IDS["gallbladder"]).sum())
    assert gall > 0
    dropped = case_organ_dice(_drop_gallbladder(ts), ct.array, condition)
    assert dropped["liver"] == pytest.approx(2 * (liver - gall) / (2 * liver - gall))
    assert all(v == 1.0 for k, v in dropped.items() if k != "liver")


def _synthetic_case(root: Path, name: str, ct: Volume, condition: np.ndarray) -> Path:
    ln = np.zeros(ct.shape, np.uint8)
    ln[15, 50:53, 60:63] = 1
    meta = {"case_id": name, "synthetic": True, "source_case": "example"}
    return save_case(Case(name, ct, Volume(condition, ct.geometry), Volume(ln, ct.geometry), meta), root)


def test_evaluation_off_missing_weights_and_kept_outputs(real_example, tmp_path, monkeypatch):
    monkeypatch.delenv("TOTALSEG_WEIGHTS_PATH", raising=False)
    ct, seg = real_example
    ts = seg.array.astype(np.int64)
    condition = totalseg_to_anatomy(ts, ct.array)
    folders = [_synthetic_case(tmp_path / "synt", f"s{k}", ct, condition) for k in range(2)]
    work, empty_home = tmp_path / "work", tmp_path / "no_weights"
    organs, _, note = evaluate_organ_dice(folders, work, mode="off")
    assert organs is None and "switched off" in note
    organs, _, note = evaluate_organ_dice(folders, work, weights_dir=empty_home)
    assert organs is None and "weights are missing in" in note and str(empty_home) in note and "Task 297" in note
    assert not (work / "totalseg").exists()                           # nothing ran, nothing downloaded
    # TotalSegmentator outputs kept from an earlier run (here: the real example output) are reused.
    write_volume(seg, organ_eval.totalseg_output_path(work, folders[0]))
    write_volume(Volume(_drop_gallbladder(ts).astype(np.uint8), seg.geometry), organ_eval.totalseg_output_path(work, folders[1]))
    organs, cases, note = evaluate_organ_dice(folders, work, weights_dir=empty_home)
    liver, gall = int((condition == 2).sum()), int((ts == IDS["gallbladder"]).sum())
    assert organs["liver"] == pytest.approx((1 + 2 * (liver - gall) / (2 * liver - gall)) / 2)
    assert organs["spleen"] == 1.0 and cases == {name: 2 for name in ORGAN_NAMES}
    assert "TotalSegmentator (fast 3 mm) on 2 synthetic images" in note
    # A changed synthetic image has another digest: its kept output no longer applies.
    write_volume(Volume(ct.array + 1.0, ct.geometry), folders[1] / CT_FILE, overwrite=True)
    organs, _, note = evaluate_organ_dice(folders, work, weights_dir=empty_home)
    assert organs is None and "weights are missing" in note
    assert organ_eval.totalseg_output_path(work, folders[0], fast=False).name.endswith(".nii.gz")
    assert "_full_" in organ_eval.totalseg_output_path(work, folders[0], fast=False).name


def _ts_from_condition(condition: np.ndarray) -> np.ndarray:
    """A TotalSegmentator-id map whose grouping is the condition: each group drawn as its first class."""
    ts = np.zeros(condition.shape, np.uint8)
    for group in load_label_groups():
        if group.classes:
            ts[condition == group.value] = IDS[group.classes[0]]
    return ts


def test_evaluate_command_reports_organ_dice(phantom_root, phantom_test_root, synthetic_root, tmp_path, monkeypatch):
    from LNSynthLib.cli.main import main
    from LNSynthLib.segmentation.nnunet.export import ExportSettings, export_dataset

    monkeypatch.delenv("TOTALSEG_WEIGHTS_PATH", raising=False)
    dataset = export_dataset(phantom_root, tmp_path / "Dataset009_T", test_root=phantom_test_root,
                             settings=ExportSettings(strategy="real"))
    synthetic = tmp_path / "synthetic"
    shutil.copytree(synthetic_root, synthetic)
    args = ["evaluate", "--labels", str(dataset / "labelsTs"), "--pred", f"Real|-={dataset / 'labelsTs'}",
            "--real", str(phantom_root), "--synthetic", str(synthetic), "--weights-dir", str(tmp_path / "none"),
            "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "r1")]) == 0
    text = (tmp_path / "r1" / "report.md").read_text(encoding="utf-8")
    assert "organ Dice (paper 002) not computed: TotalSegmentator weights are missing" in text
    # With TotalSegmentator outputs in the report's work folder, the organ table appears.
    with_liver = 0
    for folder in list_cases(synthetic):
        case = load_case(folder)
        with_liver += bool((case.anatomy.array == 2).any())
        ts = Volume(_ts_from_condition(case.anatomy.array), case.anatomy.geometry)
        write_volume(ts, organ_eval.totalseg_output_path(tmp_path / "r2" / "work", folder))
    assert main([*args, "--out", str(tmp_path / "r2")]) == 0
    assert main([*args, "--out", str(tmp_path / "r3"), "--organ-dice", "off", "--generation-limit", "2"]) == 0
    limited = json.loads((tmp_path / "r3" / "metrics.json").read_text(encoding="utf-8"))["generation"]
    assert limited["pairs"] == 2 and "organ_dice" not in limited and "switched off" in limited["note"]
    text = (tmp_path / "r2" / "report.md").read_text(encoding="utf-8")
    assert "Per-organ Dice of TotalSegmentator" in text and f"| liver | 1.0000 | {with_liver} |" in text
    metrics = json.loads((tmp_path / "r2" / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["generation"]["organ_dice"].values()) == {1.0}


def test_evaluate_options_are_declared_without_loading_torch():
    # Every lnsynth command builds the whole parser: the evaluate options must not pull torch in.
    import subprocess
    import sys

    code = ("import sys; from LNSynthLib.cli.main import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'monai', 'totalsegmentator') if m in sys.modules))")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"


def test_prediction_is_grouped_with_the_conditions_filter(tmp_path, monkeypatch):
    """A paper-run condition (abdominal filter) against TotalSegmentator on its synthetic image: a heart voxel is
    body on both sides, so the other-organs group keeps Dice 1; grouped without the filter it would count as a
    false other-organ voxel."""
    from LNSynthLib.cases import read_meta

    from ..anatomy.test_label_filter import HEART, _synthetic_scan

    monkeypatch.delenv("TOTALSEG_WEIGHTS_PATH", raising=False)
    ct_hu, ts, _ = _synthetic_scan()
    ts[30:34, 10:14, 30:34] = IDS["urinary_bladder"]            # an abdominal other-organ the filter keeps
    condition = totalseg_to_anatomy(ts, ct_hu, "abdominal")
    other = ORGAN_NAMES.index("other_organs") + 2
    assert not np.any(condition[HEART] == other)                 # the heart is body in the condition
    assert case_organ_dice(ts, ct_hu, condition)["other_organs"] < 0.5              # grouped without the filter
    assert case_organ_dice(ts, ct_hu, condition, "abdominal")["other_organs"] == 1.0

    ct = Volume(ct_hu.astype(np.float32), Geometry((1.0, 1.0, 1.0)))
    real = tmp_path / "real"
    save_case(Case("src", ct, Volume(condition, ct.geometry), Volume(np.zeros(ct.shape, np.uint8), ct.geometry),
                   {"case_id": "src", "anatomy_source": "totalseg", "anatomy_label_filter": "abdominal"}), real)
    folder = _synthetic_case(tmp_path / "synt", "src_synt_0", ct, condition)
    folder_meta = read_meta(folder)
    assert folder_meta["source_case"] == "example"
    meta_path = folder / "case.json"
    meta_path.write_text(json.dumps({**folder_meta, "source_case": "src"}), encoding="utf-8")
    work = tmp_path / "work"
    write_volume(Volume(ts, ct.geometry), organ_eval.totalseg_output_path(work, folder))   # a kept output
    organs, _, note = evaluate_organ_dice([folder], work, weights_dir=tmp_path / "none", real_root=real)
    assert organs["other_organs"] == 1.0 and "label filter (abdominal)" in note
    organs, _, note = evaluate_organ_dice([folder], work, weights_dir=tmp_path / "none")   # source not found
    assert organs["other_organs"] < 0.5 and "label filter (none)" in note
