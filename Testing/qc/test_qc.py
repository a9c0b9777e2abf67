"""Quality control of synthetic pairs on phantom cases: good samples pass, broken ones fail for the right reason,
qc.json counts per rule, and the export leaves the rejected samples out."""

from __future__ import annotations

import json

import pytest

from LNSynthLib.errors import InputDataError
from LNSynthLib.qc import QC_FILE, rejected_cases, score_synthetic
from LNSynthLib.qc.thresholds import LN_HU_TOLERANCE_HU, real_reference
from LNSynthLib.qc.verdicts import export_rejections
from LNSynthLib.segmentation.nnunet import export as ex


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
                            settings=ex.ExportSettings(strategy="real+synt", synt_per_case=None),
                            rejected=export_rejections(train, synt, qc=True))
    exported = {i["case_id"] for i in json.loads((out / ex.MANIFEST).read_text(encoding="utf-8"))["training"]}
    assert exported == {f"phantom_00{i}" for i in range(3)} | {f"phantom_00{i}_synt_0" for i in range(3)}
    assert "dropped 3 rejected synthetic case(s)" in capsys.readouterr().out
    # With QC off every sample is exported again.
    off = ex.export_dataset(train, tmp_path / "Dataset103_NoQC", synthetic_root=synt,
                            settings=ex.ExportSettings(strategy="real+synt", synt_per_case=None, qc=False),
                            rejected=export_rejections(train, synt, qc=False))
    assert json.loads((off / "dataset.json").read_text(encoding="utf-8"))["numTraining"] == 9
    assert "QC off" in capsys.readouterr().out


def test_export_refuses_when_qc_rejected_everything(data, tmp_path):
    train, synt = data
    score_synthetic(train, synt, thresholds={"anatomy_max_error_hu": -1.0})
    with pytest.raises(InputDataError, match="rejected every synthetic case") as info:
        ex.export_dataset(train, tmp_path / "Dataset102_RealSynt", synthetic_root=synt,
                          settings=ex.ExportSettings(strategy="real+synt", synt_per_case=1),
                          rejected=export_rejections(train, synt, qc=True))
    assert "--no-qc" in info.value.fix


def test_soft_tissue_window_is_the_image_metrics_window():
    from LNSynthLib.metrics.generation import WINDOW
    from LNSynthLib.qc.thresholds import SOFT_TISSUE_WINDOW_HU

    assert SOFT_TISSUE_WINDOW_HU == WINDOW   # declared twice only because metrics.generation imports torch


def test_contrast_floor_is_half_the_weakest_real_contrast_and_at_least_the_tolerance_below_it():
    from LNSynthLib.qc.thresholds import CONTRAST_TOLERANCE_HU, RealReference, derive_thresholds

    bright = derive_thresholds(RealReference([30.0], [90.0, 140.0], {"label_1": [-90.0, -95.0]}, 2))
    assert bright.contrast_hu == (45.0, 140.0 + CONTRAST_TOLERANCE_HU)
    faint = derive_thresholds(RealReference([30.0], [-10.0], {}, 1))   # a "node" no brighter than its fat
    assert faint.contrast_hu[0] == -10.0 - CONTRAST_TOLERANCE_HU


def test_node_recall_rule_uses_half_the_real_recall_and_says_how_many_nodes_were_found():
    from LNSynthLib.qc.rules import failed_rules
    from LNSynthLib.qc.thresholds import RealReference, derive_thresholds, with_node_recall

    base = derive_thresholds(RealReference([30.0], [90.0], {}, 1))
    assert base.min_node_recall is None
    thresholds = with_node_recall(base, 0.8, 10)
    assert thresholds.min_node_recall == pytest.approx(0.4) and "10 nodes" in thresholds.source["min_node_recall"]
    scores = {"node_mean_hu": [30.0], "ln_fat_contrast_hu": 90.0, "anatomy_error_hu": 0.0, "label_error_hu": {},
              "anatomy_reference": "-", "nodes_found": 1, "nodes_total": 3, "node_recall": 1 / 3}
    assert failed_rules(scores, thresholds) == [("node_recall", "the real-data segmenter finds 1 of 3 nodes "
                                                                "(0.33 < 0.40)")]
    assert failed_rules({**scores, "nodes_found": 2, "node_recall": 2 / 3}, thresholds) == []
    assert failed_rules(scores, base) == []                             # no segmenter: the rule is off
    given = derive_thresholds(RealReference([30.0], [90.0], {}, 1), min_node_recall=0.9)
    assert with_node_recall(given, 0.8, 10).min_node_recall == 0.9       # a caller's threshold is kept


def test_a_rule_the_real_cases_cannot_calibrate_is_off_and_says_why():
    from LNSynthLib.qc.rules import failed_rules
    from LNSynthLib.qc.thresholds import RealReference, derive_thresholds

    thresholds = derive_thresholds(RealReference([30.0], [], {}, 1))   # the real node has no fat around it
    assert thresholds.contrast_hu is None and thresholds.source["contrast_hu"].startswith("off:")
    scores = {"node_mean_hu": [30.0], "ln_fat_contrast_hu": 500.0, "anatomy_error_hu": None, "label_error_hu": {},
              "anatomy_reference": "-"}
    assert failed_rules(scores, thresholds) == []
    assert failed_rules({**scores, "node_mean_hu": [300.0]}, thresholds)[0][0] == "ln_hu"
