"""Per-sample quality-control scores and the rules that judge them (thresholds: `qc/thresholds.py`).

Rules, each named in qc.json:
- `ln_hu`: every scored node's mean HU within `thresholds.ln_hu`;
- `ln_fat_contrast`: mean HU of the nodes minus their surrounding fat within `thresholds.contrast_hu`;
- `anatomy_hu`: mean absolute difference of per-anatomy-label mean HU (soft-tissue window) between
  the sample and the real image its condition came from (its source case at the same window) at most
  `thresholds.anatomy_max_error_hu`; without that image, the real cases' mean per label;
- `node_recall`: the share of the sample's nodes that a segmenter trained on real data finds,
  at least `thresholds.min_node_recall` (only with that segmenter).
A score that cannot be computed (a sample without nodes, no fat around them) is recorded as None
and its rule does not reject the sample; a threshold the real cases cannot give (no real node, no
fat around one) turns its rule off, as qc.json's `thresholds.source` says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from LNSynthLib.cases import Case
from LNSynthLib.diffusion.sample.condition_fidelity import ln_fat_contrast, region_means
from LNSynthLib.qc.thresholds import QCThresholds, RealReference, node_means, soft_tissue

RULES = ("ln_hu", "ln_fat_contrast", "anatomy_hu", "node_recall")


def condition_scores(case: Case, folder: Path, real_root: Path, reference: RealReference) -> dict[str, Any]:
    """The condition-fidelity scores of one synthetic case (HU)."""
    from LNSynthLib.metrics.generation import real_crop_for

    ct, anatomy, ln = case.ct.array, case.anatomy.array, case.ln.array
    sample = region_means(soft_tissue(ct), anatomy, ln)
    crop = real_crop_for(folder, real_root)
    if crop is not None:
        target: dict[str, float | None] = dict(region_means(soft_tissue(crop[0]), anatomy, ln))
        against = "the source case at the same window"
    else:
        target = {key: reference.label_mean(key) for key in sample}
        against = "the real training cases' mean per label"
    errors = {key: round(abs(value - target[key]), 2) for key, value in sample.items()
              if key != "ln" and target.get(key) is not None}
    contrast = ln_fat_contrast(ct, anatomy, ln)
    return {"node_mean_hu": [round(v, 2) for v in node_means(ct, ln)],
            "ln_fat_contrast_hu": None if contrast is None else round(contrast, 2),
            "anatomy_error_hu": round(float(np.mean(list(errors.values()))), 2) if errors else None,
            "label_error_hu": errors, "anatomy_reference": against}


def failed_rules(scores: dict[str, Any], thresholds: QCThresholds) -> list[tuple[str, str]]:
    """(rule, reason) for every rule the scores break; empty: the sample passes."""
    failed = []
    lo, hi = thresholds.ln_hu or (-np.inf, np.inf)
    outside = [v for v in scores["node_mean_hu"] if not lo <= v <= hi]
    if outside:
        failed.append(("ln_hu", f"node mean HU {', '.join(f'{v:.0f}' for v in outside)} outside "
                                f"{lo:.0f}..{hi:.0f} HU"))
    contrast = scores["ln_fat_contrast_hu"]
    c_lo, c_hi = thresholds.contrast_hu or (-np.inf, np.inf)
    if contrast is not None and not c_lo <= contrast <= c_hi:
        failed.append(("ln_fat_contrast", f"LN−fat contrast {contrast:.0f} HU outside {c_lo:.0f}..{c_hi:.0f} HU"))
    error = scores["anatomy_error_hu"]
    if error is not None and error > thresholds.anatomy_max_error_hu:
        worst = max(scores["label_error_hu"], key=scores["label_error_hu"].get)
        failed.append(("anatomy_hu", f"anatomy labels' mean HU differ by {error:.0f} HU on average (worst "
                                     f"{worst}: {scores['label_error_hu'][worst]:.0f} HU) from "
                                     f"{scores['anatomy_reference']}, more than "
                                     f"{thresholds.anatomy_max_error_hu:.0f} HU"))
    recall = scores.get("node_recall")
    if recall is not None and thresholds.min_node_recall is not None and recall < thresholds.min_node_recall:
        failed.append(("node_recall", f"the real-data segmenter finds {scores['nodes_found']} of "
                                      f"{scores['nodes_total']} nodes ({recall:.2f} < "
                                      f"{thresholds.min_node_recall:.2f})"))
    return failed
