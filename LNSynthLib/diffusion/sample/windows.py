"""Which `patch_size` window of a real case each of its synthetic samples is drawn in (`sample.window`).

Paper 000 says only that the patch is 128³ and that the anatomy is kept (§3.3.2, §4.2.1); how
sampling windows are chosen is left open. Two rules (`choices.SAMPLE_WINDOWS`):

- `case_centre` (the earlier behaviour): one fixed window per case, centred on the bounding box
  of all its nodes (on the largest node when that centre holds none). Every sample of the case
  shares it, so nodes outside the central `patch_size` of the LN region never appear.
- `per_node` (default): the case's nodes are grouped greedily into clusters whose bounding box
  fits inside one window (largest node first); sample k is drawn around cluster k mod n_clusters,
  with a random shift that keeps the whole cluster inside the window. With at least as many
  samples per case as clusters, every node of the case appears in some sample; the jitter gives
  different anatomy crops around the same nodes.

The window (rule, start, size, cluster and its node boxes) is recorded in each synthetic case.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from LNSynthLib.diffusion.train.data import CaseArrays, centred_start, crop_case

Box = tuple[np.ndarray, np.ndarray]   # (low, high) voxel bounds, high exclusive


def patch_window(case: CaseArrays, patch_size: Sequence[int]) -> tuple[int, ...]:
    """`case_centre`: start (z, y, x) of a patch centred on the LN region's bounding box, clamped into the volume.

    When the LN region is larger than the patch and its centre holds no node, the patch is
    centred on the largest node instead; without nodes, on the volume centre.
    """
    if not len(case.ln_voxels):
        return centred_start(np.asarray(case.shape) / 2.0, patch_size, case.shape)
    start = centred_start((case.ln_voxels.min(0) + case.ln_voxels.max(0) + 1) / 2.0, patch_size, case.shape)
    if crop_case(case, start, patch_size)[2].any():
        return start
    from LNSynthLib.volumes.masks import label_components

    labels, _ = label_components(case.ln)
    largest = int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
    return centred_start(np.argwhere(labels == largest).mean(0) + 0.5, patch_size, case.shape)


def node_boxes(ln: np.ndarray) -> list[Box]:
    """Bounding boxes of the connected LN components, largest node first (ties: lower label first)."""
    from scipy import ndimage

    from LNSynthLib.volumes.masks import label_components

    labels, count = label_components(ln)
    if not count:
        return []
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    slices = ndimage.find_objects(labels)
    order = sorted(range(count), key=lambda i: (-int(sizes[i]), i))
    return [(np.array([s.start for s in slices[i]]), np.array([s.stop for s in slices[i]])) for i in order]


def node_clusters(boxes: list[Box], patch_size: Sequence[int]) -> list[Box]:
    """Greedy grouping: each node joins the first cluster whose joint box still fits in one patch."""
    size = np.asarray(patch_size)
    clusters: list[Box] = []
    for low, high in boxes:
        for i, (c_low, c_high) in enumerate(clusters):
            j_low, j_high = np.minimum(c_low, low), np.maximum(c_high, high)
            if np.all(j_high - j_low <= size):
                clusters[i] = (j_low, j_high)
                break
        else:
            clusters.append((low.copy(), high.copy()))
    return clusters


def jittered_start(box: Box, patch_size: Sequence[int], shape: Sequence[int],
                   rng: np.random.Generator) -> tuple[int, ...]:
    """A window start that keeps `box` inside the window (when it fits), shifted uniformly at random, clamped."""
    low, high = box
    size = np.asarray(patch_size)
    # Any start in [high - size, low] keeps the box inside; a box larger than the patch is centred.
    lo, hi = high - size, low
    centred = np.floor((low + high - size) / 2).astype(int)
    starts = [int(rng.integers(a, b + 1)) if a <= b else int(c) for a, b, c in zip(lo, hi, centred, strict=True)]
    return centred_start(np.asarray(starts) + size / 2.0, patch_size, shape)


def sample_window(case: CaseArrays, patch_size: Sequence[int], rule: str, k: int,
                  rng: np.random.Generator) -> tuple[tuple[int, ...], dict[str, Any]]:
    """Start of sample k's window under `rule`, and the record of it for the synthetic case.json."""
    patch = [int(s) for s in patch_size]
    if rule == "case_centre" or not len(case.ln_voxels):
        start = patch_window(case, patch)
        return start, {"rule": rule, "start_zyx": list(start), "size_zyx": patch}
    if rule != "per_node":
        raise ValueError(f"sample.window must be case_centre or per_node, got {rule!r}")  # checked at load
    clusters = node_clusters(node_boxes(case.ln), patch)
    index = k % len(clusters)
    start = jittered_start(clusters[index], patch, case.shape, rng)
    low, high = clusters[index]
    return start, {"rule": rule, "start_zyx": list(start), "size_zyx": patch, "cluster": index,
                   "clusters": len(clusters), "cluster_box_zyx": [low.tolist(), high.tolist()]}
