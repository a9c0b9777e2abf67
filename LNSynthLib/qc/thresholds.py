"""Quality-control thresholds: parameters whose defaults come from the real training cases.

A synthetic pair should look like real data under its condition. "Like real data" is measured on
the real training cases themselves, with a documented tolerance around what they show:
- LN mean HU: every synthetic node's mean HU within the range of the real nodes' mean HU, widened
  by `LN_HU_TOLERANCE_HU` on each side (nodes smaller than a few voxels are noisy; partial volume);
- LN−fat contrast (`condition_fidelity.ln_fat_contrast`): down to `MIN_CONTRAST_FRACTION` of the
  weakest real case's contrast (the share `condition_fidelity.follows_conditions` asks of a trained
  model: the nodes still stand out from the fat), and never less than `CONTRAST_TOLERANCE_HU`
  below it; at most the strongest real contrast plus `CONTRAST_TOLERANCE_HU`;
- per-anatomy-label mean HU (`condition_fidelity.region_means`), in the soft-tissue window
  `metrics.generation.WINDOW` (−120..240 HU: air and bone only need to be darker / brighter than
  it, as the image metrics see them): the mean absolute difference between the sample and the real
  image its condition came from may be as large as real cases differ from each other
  (`ANATOMY_SPREAD_FACTOR` × the mean over labels of the between-case sd of a label's mean HU),
  and never below `ANATOMY_FLOOR_HU`;
- NodeRecall_synt per sample (only with a segmenter trained on real data): at least
  `NODE_RECALL_FRACTION` of the node recall that segmenter reaches on the real training cases.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from LNSynthLib.cases import is_synthetic, list_cases, load_case
from LNSynthLib.diffusion.sample.condition_fidelity import (
    MIN_CONTRAST_FRACTION,
    ln_fat_contrast,
    region_means,
)
from LNSynthLib.errors import InputDataError
from LNSynthLib.volumes.masks import label_components

LN_HU_TOLERANCE_HU = 20.0
CONTRAST_TOLERANCE_HU = 20.0
ANATOMY_SPREAD_FACTOR = 3.0
ANATOMY_FLOOR_HU = 25.0
NODE_RECALL_FRACTION = 0.5
MIN_NODE_VOXELS = 5          # nodes (or node parts in a patch) below this size are not scored for HU
SOFT_TISSUE_WINDOW_HU = (-120.0, 240.0)   # = metrics.generation.WINDOW (that module imports torch)


@dataclass(frozen=True)
class QCThresholds:
    """The numbers the rules compare with; `source` says where each came from."""

    ln_hu: tuple[float, float] | None            # None: no real node to measure (rule off)
    contrast_hu: tuple[float, float] | None      # None: no real node with fat around it (rule off)
    anatomy_max_error_hu: float
    min_node_recall: float | None = None     # None: the NodeRecall rule is off (no real-data segmenter)
    source: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RealReference:
    """What the real training cases show: per-node mean HU, per-case contrast, per-label mean HU per case."""

    node_means: list[float]
    contrasts: list[float]
    label_means: dict[str, list[float]]
    n_cases: int

    def label_mean(self, key: str) -> float | None:
        values = self.label_means.get(key)
        return float(np.mean(values)) if values else None


def node_means(ct_hu: np.ndarray, ln: np.ndarray) -> list[float]:
    """Mean HU of each lymph-node component with at least `MIN_NODE_VOXELS` voxels."""
    labels, count = label_components(ln)
    out = []
    for number in range(1, count + 1):
        node = labels == number
        if node.sum() >= MIN_NODE_VOXELS:
            out.append(float(ct_hu[node].mean()))
    return out


def soft_tissue(ct_hu: np.ndarray) -> np.ndarray:
    """HU clipped to the soft-tissue window `metrics.generation.WINDOW` (the anatomy rule compares these)."""
    return np.clip(ct_hu, *SOFT_TISSUE_WINDOW_HU)


def real_reference(train_root: str | Path) -> RealReference:
    """Measure the real training cases (synthetic cases in the same folder are skipped)."""
    folders = [f for f in list_cases(train_root) if not is_synthetic(f)]
    nodes: list[float] = []
    contrasts: list[float] = []
    labels: dict[str, list[float]] = {}
    for folder in folders:
        case = load_case(folder)
        ct, anatomy, ln = case.ct.array, case.anatomy.array, case.ln.array
        nodes += node_means(ct, ln)
        contrast = ln_fat_contrast(ct, anatomy, ln)
        if contrast is not None:
            contrasts.append(contrast)
        for key, value in region_means(soft_tissue(ct), anatomy, ln).items():
            if key != "ln":
                labels.setdefault(key, []).append(value)
    if not folders:
        raise InputDataError("no real training cases to derive the quality-control thresholds from",
                             path=train_root, fix="give the prepared real training cases as --cases")
    return RealReference(nodes, contrasts, labels, len(folders))


def derive_thresholds(reference: RealReference, **overrides: Any) -> QCThresholds:
    """Default thresholds from `reference`; any field given in `overrides` replaces its default."""
    nodes, contrasts = reference.node_means or [np.nan], reference.contrasts or [np.nan]
    lo, hi = min(nodes), max(nodes)
    c_lo, c_hi = min(contrasts), max(contrasts)
    spreads = [float(np.std(v)) for v in reference.label_means.values() if len(v) >= 2]
    spread = float(np.mean(spreads)) if spreads else 0.0
    anatomy = max(ANATOMY_FLOOR_HU, ANATOMY_SPREAD_FACTOR * spread)
    n = reference.n_cases
    source = {
        "ln_hu": f"{len(reference.node_means)} real nodes in {n} training cases: mean HU {lo:.1f}..{hi:.1f}, "
                 f"± {LN_HU_TOLERANCE_HU:g} HU tolerance",
        "contrast_hu": f"LN−fat contrast of {len(reference.contrasts)} training cases: {c_lo:.1f}..{c_hi:.1f} HU; "
                       f"down to {MIN_CONTRAST_FRACTION:g} × the weakest (at least {CONTRAST_TOLERANCE_HU:g} HU "
                       f"below it), up to the strongest + {CONTRAST_TOLERANCE_HU:g} HU",
        "anatomy_max_error_hu": f"{ANATOMY_SPREAD_FACTOR:g} × {spread:.1f} HU (mean between-case sd of a label's "
                                f"mean HU over {n} training cases), at least {ANATOMY_FLOOR_HU:g} HU",
        "min_node_recall": "off: no segmenter trained on real data was given",
    }
    if not reference.node_means:
        source["ln_hu"] = "off: the real training cases hold no lymph node to measure"
    if not reference.contrasts:
        source["contrast_hu"] = "off: no real lymph node has body-label fat around it"
    thresholds = QCThresholds(
        (lo - LN_HU_TOLERANCE_HU, hi + LN_HU_TOLERANCE_HU) if reference.node_means else None,
        (c_lo - max(CONTRAST_TOLERANCE_HU, (1 - MIN_CONTRAST_FRACTION) * abs(c_lo)), c_hi + CONTRAST_TOLERANCE_HU)
        if reference.contrasts else None, anatomy, None, source)
    given = {k: v for k, v in overrides.items() if v is not None}
    if given:
        source = {**source, **{k: "given by the caller" for k in given}}
        thresholds = replace(thresholds, **given, source=source)
    return thresholds


def with_node_recall(thresholds: QCThresholds, real_recall: float, n_nodes: int) -> QCThresholds:
    """Turn the NodeRecall rule on: `NODE_RECALL_FRACTION` × the segmenter's recall on the real training nodes."""
    if thresholds.source.get("min_node_recall") == "given by the caller":
        return thresholds
    value = NODE_RECALL_FRACTION * real_recall
    note = (f"{NODE_RECALL_FRACTION:g} × {real_recall:.2f} (the real-data segmenter's node recall on "
            f"{n_nodes} nodes of the real training cases)")
    return replace(thresholds, min_node_recall=value, source={**thresholds.source, "min_node_recall": note})
