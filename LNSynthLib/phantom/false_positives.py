"""What a segmenter's false positives fell on, in a phantom test case: the phantom knows every voxel's tissue.

Precision is where synthetic training data helps or hurts a lymph-node segmenter, and the reason
is in what it mistakes for a node. The phantom's tissue map (`Phantom.tissue`, regenerated from the
seed in case.json) splits false-positive voxels into: the border of a real node (within
`BORDER_VOXELS` of the ground truth: an outline disagreement, not a false finding), the hard
negatives that look like nodes (ureter, small vein, collapsed bowel), other bowel, vessels, fat and
other tissue. Components are attributed to the class holding most of their voxels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from LNSynthLib.phantom import tissues as T

BORDER_VOXELS = 2
CLASSES: dict[str, tuple[int, ...]] = {
    "ureter": (T.URETER,),
    "small vein": (T.SMALL_VEIN,),
    "collapsed bowel": (T.COLLAPSED_BOWEL,),
    "other bowel": (T.GI_WALL, T.GI_FLUID, T.STOOL),
    "vessel": (T.ARTERY, T.VEIN, T.PORTAL),
    "fat": (T.SUBCUT_FAT, T.VISCERAL_FAT),
}
ORDER = ("node border", *CLASSES, "other")


def classify(tissue: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Index into ORDER for every voxel (node border first, then the tissue classes, else other)."""
    out = np.full(tissue.shape, len(ORDER) - 1, dtype=np.uint8)
    for index, name in enumerate(ORDER[1:-1], start=1):
        out[np.isin(tissue, CLASSES[name])] = index
    near = ndimage.binary_dilation(gt > 0, iterations=BORDER_VOXELS)
    out[near] = 0
    return out


def false_positive_split(pred: np.ndarray, gt: np.ndarray, tissue: np.ndarray) -> dict[str, Any]:
    """False-positive voxels and components per class of ORDER."""
    if not (pred.shape == gt.shape == tissue.shape):
        raise ValueError(f"prediction {pred.shape}, ground truth {gt.shape} and tissue {tissue.shape} differ")
    fp = (pred > 0) & ~(gt > 0)
    classes = classify(tissue, gt)
    voxels = np.bincount(classes[fp], minlength=len(ORDER))
    labels, n = ndimage.label(fp)
    components = np.zeros(len(ORDER), dtype=int)
    for index in range(1, n + 1):
        components[np.bincount(classes[labels == index], minlength=len(ORDER)).argmax()] += 1
    return {"voxels": {name: int(v) for name, v in zip(ORDER, voxels, strict=True)},
            "components": {name: int(c) for name, c in zip(ORDER, components, strict=True)}}


def phantom_tissue(case_folder: str | Path) -> np.ndarray | None:
    """The tissue map of a prepared phantom case (None for a case that is not an uncropped phantom)."""
    from LNSynthLib.cases import load_case
    from LNSynthLib.phantom.generate import generate_phantom

    case = load_case(case_folder)
    meta = case.meta
    if meta.get("source") != "phantom" or "phantom_seed" not in meta:
        return None
    phantom = generate_phantom(int(meta["phantom_seed"]), tuple(meta["phantom_shape_zyx"]),
                               tuple(meta.get("phantom_spacing_xyz", (1.0, 1.0, 1.0))))
    if phantom.tissue is None or phantom.tissue.shape != case.ct.shape:
        return None
    return phantom.tissue.array


def add_splits(total: dict[str, Any] | None, split: dict[str, Any]) -> dict[str, Any]:
    """Sum of two splits (None: start a new sum)."""
    if total is None:
        return {kind: dict(counts) for kind, counts in split.items()}
    return {kind: {name: total[kind][name] + split[kind][name] for name in ORDER} for kind in split}
