"""Quality control's NodeRecall rule with a real nnU-Net model (the suite's one real run), and the evaluation
reusing its predictions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from LNSynthLib.cases import list_cases
from LNSynthLib.qc import QC_FILE, score_synthetic
from LNSynthLib.qc.thresholds import NODE_RECALL_FRACTION
from LNSynthLib.volumes.io import read_volume
from LNSynthLib.volumes.masks import label_components


@pytest.mark.slow   # two nnU-Net predictions and the evaluation: about 3 min on a busy 2-core machine
def test_node_recall_rule_scores_every_sample_with_the_real_model(nnunet_run: dict, phantom_root: Path,
                                                                  synthetic_root: Path, tmp_path: Path) -> None:
    import shutil

    from LNSynthLib.report.generation_eval import evaluate_generation

    synthetic_root = Path(shutil.copytree(synthetic_root, tmp_path / "synthetic"))   # the session's copy stays unscored
    work = tmp_path / "work"
    report = score_synthetic(phantom_root, synthetic_root, real_model=nnunet_run["model"], device="cpu",
                             work_dir=work)
    saved = json.loads((synthetic_root / QC_FILE).read_text(encoding="utf-8"))
    assert saved["real_model"] == str(Path(nnunet_run["model"]).resolve())
    threshold = saved["thresholds"]["min_node_recall"]
    assert "node recall on" in saved["thresholds"]["source"]["min_node_recall"]
    assert 0.0 <= threshold <= NODE_RECALL_FRACTION
    found = total = 0
    for folder in list_cases(synthetic_root):
        scores = report.samples[folder.name]["scores"]
        assert scores["nodes_total"] == label_components(read_volume(folder / "ln.nii.gz").array)[1]
        failed = "node_recall" in report.samples[folder.name]["failed_rules"]
        assert failed == (scores["node_recall"] < threshold)
        found, total = found + scores["nodes_found"], total + scores["nodes_total"]
    assert saved["removed_by_rule"]["node_recall"] == sum(
        "node_recall" in s["failed_rules"] for s in saved["samples"].values())
    # The evaluation with the same work folder predicts nothing again and pools the same detections.
    predictions = sorted((work / "synthetic_predictions").glob("*.nii.gz"))
    stamps = [p.stat().st_mtime_ns for p in predictions]
    generation = evaluate_generation(phantom_root, synthetic_root, work_dir=work, real_model=nnunet_run["model"],
                                     device="cpu")
    assert [p.stat().st_mtime_ns for p in predictions] == stamps
    assert generation["NodeRecall_synt"] == pytest.approx(found / total)
