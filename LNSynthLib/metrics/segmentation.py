"""Segmentation metrics of paper 000 (§4.4.2): DSC, IoU, Recall, Precision, ASSD (mm), NodeRecall.

All functions take binary arrays in `(z, y, x)` order and spacing in ITK `(x, y, z)` order, as
everywhere in LNSynthLib.

A case whose prediction is empty counts against the model instead of being skipped (skipping it
flatters a model that misses whole cases): its Precision is 0 and its ASSD is the image diagonal
in mm (`EMPTY_ASSD_RULE`), the largest distance two points of that grid can have, so no real
surface distance on the grid can exceed it. Dataset summaries count such cases
(`empty_predictions`). NaN remains only where a metric has no meaning at all (Recall and
NodeRecall of a case without ground truth), and dataset means skip those.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from LNSynthLib.volumes.masks import label_components

NODE_DSC_THRESHOLD = 0.1  # paper 000: a node is detected when a prediction overlaps it with DSC > 0.1
METRIC_NAMES = ("DSC", "IoU", "Recall", "Precision", "ASSD", "NodeRecall")
# ASSD definitions (see `assd_mm`), the default first. medpy's `assd` changed between them: ≤ 0.4 averaged the
# two directed means, ≥ 0.5 pools all distances (loli/medpy issue #108).
ASSD_FORMS = ("directed-means", "pooled")
EMPTY_ASSD_RULE = ("a case where exactly one of prediction and ground truth is empty gets ASSD = the image "
                   "diagonal in mm (the largest distance on its grid) and Precision 0")


def _binary(a: np.ndarray) -> np.ndarray:
    return np.asarray(a) > 0


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else float("nan")


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    p, g = _binary(pred), _binary(gt)
    den = p.sum() + g.sum()
    return 1.0 if den == 0 else 2.0 * float(np.logical_and(p, g).sum()) / float(den)


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    p, g = _binary(pred), _binary(gt)
    union = np.logical_or(p, g).sum()
    return 1.0 if union == 0 else float(np.logical_and(p, g).sum()) / float(union)


def recall(pred: np.ndarray, gt: np.ndarray) -> float:
    """Share of ground-truth voxels that were predicted (NaN without ground truth)."""
    p, g = _binary(pred), _binary(gt)
    return _ratio(np.logical_and(p, g).sum(), g.sum())


def precision(pred: np.ndarray, gt: np.ndarray) -> float:
    """Share of predicted voxels that are ground truth.

    An empty prediction of a case with ground truth is 0 (a missed case counts against the model,
    not skipped); both empty is 1, as for Dice and IoU.
    """
    p, g = _binary(pred), _binary(gt)
    if not p.any():
        return 1.0 if not g.any() else 0.0
    return _ratio(np.logical_and(p, g).sum(), p.sum())


def _surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of the mask that touch the background (6-neighbourhood); border of the array counts as outside."""
    eroded = ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(3, 1), border_value=0)
    return mask & ~eroded


def surface_distances_mm(a: np.ndarray, b: np.ndarray, spacing_xyz: Sequence[float]) -> np.ndarray:
    """Distance (mm) from each surface voxel centre of `a` to the nearest surface voxel centre of `b`."""
    sa, sb = _surface(_binary(a)), _surface(_binary(b))
    if not sa.any() or not sb.any():
        return np.array([], dtype=float)
    sampling = tuple(float(s) for s in spacing_xyz)[::-1]
    dist_to_b = ndimage.distance_transform_edt(~sb, sampling=sampling)
    return dist_to_b[sa]


def diagonal_mm(shape_zyx: Sequence[int], spacing_xyz: Sequence[float]) -> float:
    """Length (mm) of the image diagonal: the ASSD given to a case where one of the masks is empty."""
    extent = np.asarray(shape_zyx, dtype=float)[::-1] * np.asarray(spacing_xyz, dtype=float)
    return float(np.sqrt(np.sum(extent**2)))


def assd_mm(pred: np.ndarray, gt: np.ndarray, spacing_xyz: Sequence[float] = (1.0, 1.0, 1.0),
            form: str = ASSD_FORMS[0]) -> float:
    """Average symmetric surface distance in millimetres (spacing-aware).

    `directed-means` (default): the mean of the two directed average surface distances,
    (mean d(∂P→∂G) + mean d(∂G→∂P)) / 2, as `medpy.metric.binary.assd` up to medpy 0.4.
    `pooled`: all distances of both directions in one mean, (Σd(∂P→∂G) + Σd(∂G→∂P)) / (|∂P| + |∂G|),
    as medpy ≥ 0.5 and Heimann et al. (2009). They differ when the two surfaces have different
    sizes. Surfaces and distances are medpy's (6-connected border, Euclidean distance transform with
    the spacing). Both empty: 0; exactly one empty: the image diagonal (`EMPTY_ASSD_RULE`).
    """
    if form not in ASSD_FORMS:
        raise ValueError(f"ASSD form must be one of {ASSD_FORMS}, got {form!r}")
    p, g = _binary(pred), _binary(gt)
    if not p.any() and not g.any():
        return 0.0
    if not p.any() or not g.any():
        return diagonal_mm(p.shape, spacing_xyz)
    d_pg = surface_distances_mm(p, g, spacing_xyz)
    d_gp = surface_distances_mm(g, p, spacing_xyz)
    if form == "directed-means":
        return float((d_pg.mean() + d_gp.mean()) / 2.0)
    return float((d_pg.sum() + d_gp.sum()) / (d_pg.size + d_gp.size))


def node_detection(pred: np.ndarray, gt: np.ndarray, threshold: float = NODE_DSC_THRESHOLD) -> tuple[int, int]:
    """(found, total) ground-truth nodes; a node is found when one predicted component has DSC > threshold with it."""
    gt_labels, n_gt = label_components(gt)   # nodes: 26-connected, as everywhere
    if n_gt == 0:
        return 0, 0
    pred_labels, n_pred = label_components(pred)
    if n_pred == 0:
        return 0, n_gt
    gt_sizes = np.bincount(gt_labels.ravel(), minlength=n_gt + 1)
    pred_sizes = np.bincount(pred_labels.ravel(), minlength=n_pred + 1)
    both = (gt_labels > 0) & (pred_labels > 0)
    # Overlap table: one pass over the voxels where both masks are set.
    pair_counts = np.zeros((n_gt + 1, n_pred + 1), dtype=np.int64)
    np.add.at(pair_counts, (gt_labels[both], pred_labels[both]), 1)
    found = 0
    for node in range(1, n_gt + 1):
        overlaps = pair_counts[node]
        candidates = np.nonzero(overlaps)[0]
        dsc = 2.0 * overlaps[candidates] / (gt_sizes[node] + pred_sizes[candidates])
        if candidates.size and float(dsc.max()) > threshold:
            found += 1
    return found, n_gt


def node_recall(pred: np.ndarray, gt: np.ndarray, threshold: float = NODE_DSC_THRESHOLD) -> float:
    found, total = node_detection(pred, gt, threshold)
    return _ratio(found, total)


def segmentation_metrics(pred: np.ndarray, gt: np.ndarray, spacing_xyz: Sequence[float] = (1.0, 1.0, 1.0),
                         assd_form: str = ASSD_FORMS[0]) -> dict[str, float]:
    """All paper-000 metrics of one case, plus the node counts needed to pool NodeRecall over a dataset."""
    if np.shape(pred) != np.shape(gt):
        raise ValueError(f"prediction shape {np.shape(pred)} differs from ground truth {np.shape(gt)}")
    found, total = node_detection(pred, gt)
    empty_prediction = bool(not _binary(pred).any() and _binary(gt).any())
    return {
        "DSC": dice(pred, gt), "IoU": iou(pred, gt), "Recall": recall(pred, gt),
        "Precision": precision(pred, gt), "ASSD": assd_mm(pred, gt, spacing_xyz, assd_form),
        "NodeRecall": _ratio(found, total), "nodes_found": found, "nodes_total": total,
        "empty_prediction": empty_prediction,
    }


def summarize(per_case: dict[str, dict[str, float]],
              assd_form: str = ASSD_FORMS[0]) -> dict[str, float | int | str]:
    """Dataset figures: mean of each metric over cases; NodeRecall pooled over all nodes and as a case mean.

    `NodeRecall` is pooled (nodes found / all nodes, paper 000's definition); `NodeRecall_case_mean`
    averages the per-case recalls of the cases that have nodes, so a case with many nodes does not
    dominate. `empty_predictions` counts cases scored by `EMPTY_ASSD_RULE`.
    """
    summary: dict[str, float | int | str] = {}
    for name in METRIC_NAMES:
        if name == "NodeRecall":
            continue
        values = np.array([m[name] for m in per_case.values()], dtype=float)
        summary[name] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    found = sum(int(m["nodes_found"]) for m in per_case.values())
    total = sum(int(m["nodes_total"]) for m in per_case.values())
    summary["NodeRecall"] = _ratio(found, total)
    case_recalls = [int(m["nodes_found"]) / int(m["nodes_total"]) for m in per_case.values() if m["nodes_total"]]
    summary["NodeRecall_case_mean"] = float(np.mean(case_recalls)) if case_recalls else float("nan")
    summary["nodes_found"], summary["nodes_total"], summary["cases"] = found, total, len(per_case)
    summary["empty_predictions"] = sum(bool(m.get("empty_prediction", False)) for m in per_case.values())
    summary["assd_form"] = assd_form
    return summary
