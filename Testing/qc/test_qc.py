"""Quality control of synthetic pairs on phantom cases: good samples pass, broken ones fail for the right reason,
qc.json counts per rule, and the export leaves the rejected samples out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from LNSynthLib.anatomy.groups import BODY
from LNSynthLib.cases import Case, list_cases, load_case, save_case
from LNSynthLib.errors import InputDataError
from LNSynthLib.phantom import write_phantom_cases
from LNSynthLib.qc import QC_FILE, rejected_cases, score_synthetic
from LNSynthLib.qc.thresholds import LN_HU_TOLERANCE_HU, real_reference
from LNSynthLib.segmentation import nnunet_export as ex
from LNSynthLib.volumes.geometry import Volume

SIZE = 24


def _window(case: Case) -> tuple[tuple[slice, ...], tuple[int, int, int]]:
    zyx = np.argwhere(case.ln.array > 0).mean(axis=0).round().astype(int)
    start = tuple(int(np.clip(c - SIZE // 2, 0, n - SIZE)) for c, n in zip(zyx, case.ct.shape, strict=True))
    return tuple(slice(s, s + SIZE) for s in start), start


def _synthetic(out: Path, case: Case, k: int, ct: np.ndarray, ln: np.ndarray, start: tuple[int, int, int],
               anatomy: np.ndarray) -> None:
    geometry = case.ct.geometry.shifted(start)
    meta = {"synthetic": True, "source_case": case.case_id, "sample_index": k}
    save_case(Case(f"{case.case_id}_synt_{k}", Volume(ct.astype(np.float32), geometry), Volume(anatomy, geometry),
                   Volume(ln.astype(np.uint8), geometry), meta), out)


@pytest.fixture()
def data(tmp_path: Path) -> tuple[Path, Path]:
    """3 real phantom cases; per case a good sample (real window + CT-like noise) and one broken one.

    phantom_000_synt_1: a node painted into fat where the CT was not changed.
    phantom_001_synt_1: the node voxels at 200 HU.
    phantom_002_synt_1: every organ 120 HU brighter than its condition's real image.
    """
    train, synt = tmp_path / "train", tmp_path / "synt"
    write_phantom_cases(train, 3, seed=5, shape_zyx=(48, 64, 64))
    rng = np.random.default_rng(0)
    for i, folder in enumerate(list_cases(train)):
        case = load_case(folder)
        box, start = _window(case)
        ct, anatomy, ln = case.ct.array[box], case.anatomy.array[box], case.ln.array[box]
        _synthetic(synt, case, 0, ct + rng.normal(0, 8, ct.shape), ln, start, anatomy)
        bad_ct, bad_ln = ct.copy(), ln.copy()
        if i == 0:      # painted in fat, CT unchanged: a ball of body-label fat voxels far from the nodes
            fat = (anatomy == BODY) & (ct < -60) & ~ndimage.binary_dilation(ln > 0, iterations=4)
            centre = np.argwhere(ndimage.binary_erosion(fat, iterations=2))[0]
            zz, yy, xx = np.indices(ct.shape)
            ball = ((zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2) <= 4
            bad_ln[ball & fat] = 1
        elif i == 1:
            bad_ct[ln > 0] = 200.0
        else:
            bad_ct[anatomy > BODY] += 120.0
        _synthetic(synt, case, 1, bad_ct, bad_ln, start, anatomy)
    return train, synt


def test_good_samples_pass_and_broken_ones_fail_for_the_right_reason(data):
    train, synt = data
    report = score_synthetic(train, synt)
    verdicts = {name: s["failed_rules"] for name, s in report.samples.items()}
    assert {name: rules for name, rules in verdicts.items() if name.endswith("_0")} == {
        f"phantom_00{i}_synt_0": [] for i in range(3)}
    assert "ln_hu" in verdicts["phantom_000_synt_1"]                     # fat under a painted node
    assert verdicts["phantom_001_synt_1"][:2] == ["ln_hu", "ln_fat_contrast"]   # 200 HU nodes
    assert verdicts["phantom_002_synt_1"] == ["anatomy_hu"]               # organs off their condition
    bright = report.samples["phantom_001_synt_1"]
    assert "200" in bright["reasons"][0] and bright["scores"]["node_mean_hu"][0] == 200.0
    assert report.rejected == ["phantom_000_synt_1", "phantom_001_synt_1", "phantom_002_synt_1"]


def test_qc_json_records_counts_per_rule_and_where_the_thresholds_came_from(data):
    train, synt = data
    report = score_synthetic(train, synt)
    saved = json.loads((synt / QC_FILE).read_text(encoding="utf-8"))
    assert saved["n_samples"] == 6 and saved["n_rejected"] == 3 and saved["n_passed"] == 3
    per_rule = {rule: sum(rule in s["failed_rules"] for s in saved["samples"].values()) for rule in saved["rules"]}
    assert saved["removed_by_rule"] == per_rule and per_rule["anatomy_hu"] == 1 and per_rule["node_recall"] == 0
    reference = real_reference(train)
    assert saved["thresholds"]["ln_hu"] == pytest.approx([min(reference.node_means) - LN_HU_TOLERANCE_HU,
                                                          max(reference.node_means) + LN_HU_TOLERANCE_HU])
    assert "real nodes in 3 training cases" in saved["thresholds"]["source"]["ln_hu"]
    assert saved["thresholds"]["min_node_recall"] is None and saved["real_model"] is None
    assert rejected_cases(synt) == set(report.rejected)
    assert "3 of 6" in report.summary()


def test_thresholds_are_parameters(data):
    train, synt = data
    report = score_synthetic(train, synt, thresholds={"ln_hu": (-1000.0, 1000.0), "contrast_hu": (-1000.0, 1000.0)})
    assert report.samples["phantom_001_synt_1"]["passed"]
    assert report.thresholds.source["ln_hu"] == "given by the caller"


def test_export_drops_the_rejected_samples_and_says_so(data, tmp_path, capsys):
    train, synt = data
    score_synthetic(train, synt)
    capsys.readouterr()
    out = ex.export_dataset(train, tmp_path / "Dataset102_RealSynt", synthetic_root=synt,
                            settings=ex.ExportSettings(strategy="real+synt", synt_per_case=None))
    exported = {i["case_id"] for i in json.loads((out / ex.MANIFEST).read_text(encoding="utf-8"))["training"]}
    assert exported == {f"phantom_00{i}" for i in range(3)} | {f"phantom_00{i}_synt_0" for i in range(3)}
    assert "dropped 3 rejected synthetic case(s)" in capsys.readouterr().out
    # With QC off every sample is exported again.
    off = ex.export_dataset(train, tmp_path / "Dataset103_NoQC", synthetic_root=synt,
                            settings=ex.ExportSettings(strategy="real+synt", synt_per_case=None, qc=False))
    assert json.loads((off / "dataset.json").read_text(encoding="utf-8"))["numTraining"] == 9
    assert "QC off" in capsys.readouterr().out


def test_export_refuses_when_qc_rejected_everything(data, tmp_path):
    train, synt = data
    score_synthetic(train, synt, thresholds={"anatomy_max_error_hu": -1.0})
    with pytest.raises(InputDataError, match="rejected every synthetic case") as info:
        ex.export_dataset(train, tmp_path / "Dataset102_RealSynt", synthetic_root=synt,
                          settings=ex.ExportSettings(strategy="real+synt", synt_per_case=1))
    assert "--no-qc" in info.value.fix
