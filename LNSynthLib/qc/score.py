"""Score every synthetic pair of a folder and record the verdicts in `<synthetic_root>/qc.json`.

A synthetic pair that does not look like its condition teaches the segmenter wrong labels.
`score_synthetic` measures each pair (`qc/rules.py`) against thresholds derived from the real
training cases (`qc/thresholds.py`) and writes qc.json: per sample the scores, pass/fail and the
reasons; per rule how many samples break it (a sample can break several; `n_rejected` counts each
sample once); the thresholds and where each came from. `nnunet export` leaves the rejected
samples out while QC is on (`segmentation/nnunet/export.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from LNSynthLib.atomic import write_text_atomic
from LNSynthLib.cases import LN_FILE, is_synthetic, list_cases, load_case
from LNSynthLib.errors import InputDataError
from LNSynthLib.jobs.progress import Progress
from LNSynthLib.qc.rules import RULES, condition_scores, failed_rules
from LNSynthLib.qc.thresholds import QCThresholds, derive_thresholds, real_reference, with_node_recall
from LNSynthLib.qc.verdicts import QC_FILE


@dataclass(frozen=True)
class QCReport:
    """What qc.json holds, in memory."""

    path: Path
    thresholds: QCThresholds
    samples: dict[str, dict[str, Any]]
    removed_by_rule: dict[str, int]
    real_model: str | None

    @property
    def rejected(self) -> list[str]:
        return sorted(name for name, s in self.samples.items() if not s["passed"])

    def as_json(self) -> dict[str, Any]:
        return {"n_samples": len(self.samples), "n_passed": len(self.samples) - len(self.rejected),
                "n_rejected": len(self.rejected), "removed_by_rule": self.removed_by_rule,
                "thresholds": self.thresholds.as_json(), "real_model": self.real_model,
                "rules": list(RULES), "samples": self.samples}

    def summary(self) -> str:
        rules = ", ".join(f"{rule} {n}" for rule, n in self.removed_by_rule.items())
        return f"QC: {len(self.rejected)} of {len(self.samples)} synthetic samples rejected ({rules})"


def _node_recalls(folders: list[Path], train_root: Path, real_model: Path, work_dir: Path,
                  device: str) -> tuple[dict[str, tuple[int, int]], float, int]:
    """Per sample (found, total) nodes of the real-data segmenter, and its node recall on the real training cases."""
    from LNSynthLib.devices import nnunet_device
    from LNSynthLib.metrics.segmentation import node_detection
    from LNSynthLib.segmentation.apply import segment_cases
    from LNSynthLib.volumes.io import read_volume

    dev = nnunet_device(device)
    predictions = segment_cases(folders, real_model, work_dir, dev)   # by case id
    per_sample = {f.name: node_detection(predictions[f.name], read_volume(f / LN_FILE).array) for f in folders}
    real = [f for f in list_cases(train_root) if not is_synthetic(f)]
    real_predictions = segment_cases(real, real_model, work_dir, dev, kind="real")
    found = total = 0
    for folder in real:
        f, t = node_detection(real_predictions[folder.name], read_volume(folder / LN_FILE).array)
        found, total = found + f, total + t
    return per_sample, (found / total if total else 0.0), total


def score_synthetic(train_root: str | Path, synthetic_root: str | Path, *,
                    thresholds: QCThresholds | dict[str, Any] | None = None, real_model: str | Path | None = None,
                    device: str = "auto", work_dir: str | Path | None = None) -> QCReport:
    """Score every synthetic case of `synthetic_root` and write `<synthetic_root>/qc.json`.

    `thresholds`: None derives every threshold from the real cases of `train_root`; a dict replaces
    some of them (`ln_hu`, `contrast_hu`, `anatomy_max_error_hu`, `min_node_recall`); a
    `QCThresholds` is used as it is. `real_model` (an nnU-Net model folder trained on real data)
    adds the NodeRecall rule; its images and predictions are kept in `work_dir`
    (default `<synthetic_root>/.qc_work`).
    """
    train_root, synthetic_root = Path(train_root), Path(synthetic_root)
    folders = [f for f in list_cases(synthetic_root) if is_synthetic(f)]
    if not folders:
        raise InputDataError("no synthetic cases to score", path=synthetic_root,
                             fix="give the folder written by `lnsynth sample`")
    reference = real_reference(train_root)
    if not isinstance(thresholds, QCThresholds):
        thresholds = derive_thresholds(reference, **(thresholds or {}))
    scores: dict[str, dict[str, Any]] = {}
    with Progress("qc", len(folders)) as progress:
        for folder in folders:
            scores[folder.name] = condition_scores(load_case(folder), folder, train_root, reference)
            progress.update()
    if real_model is not None:
        work = Path(work_dir) if work_dir is not None else synthetic_root / ".qc_work"
        detected, real_recall, real_nodes = _node_recalls(folders, train_root, Path(real_model), work, device)
        thresholds = with_node_recall(thresholds, real_recall, real_nodes)
        for name, (found, total) in detected.items():
            scores[name].update(nodes_found=found, nodes_total=total,
                                node_recall=round(found / total, 3) if total else None)
    samples: dict[str, dict[str, Any]] = {}
    removed = dict.fromkeys(RULES, 0)
    for name, sample_scores in scores.items():
        failed = failed_rules(sample_scores, thresholds)
        for rule, _ in failed:
            removed[rule] += 1
        samples[name] = {"passed": not failed, "failed_rules": [rule for rule, _ in failed],
                         "reasons": [f"{rule}: {why}" for rule, why in failed], "scores": sample_scores}
    report = QCReport(synthetic_root / QC_FILE, thresholds, samples, removed,
                      None if real_model is None else str(Path(real_model).resolve()))
    write_text_atomic(report.path, json.dumps(report.as_json(), indent=2), overwrite=True)
    return report
