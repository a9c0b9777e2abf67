"""Transform a lymph-node mask for sampling: per node a random affine (rotation, scaling, small
shift) or elastic change of shape, and random removal of one node when there are several.

Overlap rule (paper: "lymph nodes do not overlap with other abdominal organs and tissues"):
*organs* are every anatomy label except air (0) and body (1) — i.e. labels 2..13, the
TotalSegmentator groups (vessels, bowel, solid organs, bone, muscle...). Body is the
fat/soft-tissue remainder where lymph nodes live. A transformed node is rejected (and the
transform retried, up to `max_tries`) when it covers more organ voxels than the original node
did (0 for a clean mask), when it touches another node (that would merge two nodes), or when
it vanishes. A node whose every try is rejected keeps its original shape. The anatomy map
itself is never changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import ndimage

from LNSynthLib.anatomy.groups import AIR, BODY
from LNSynthLib.volumes.masks import label_components

NON_ORGAN_LABELS = (AIR, BODY)
ROTATION_DEG = 30.0
SCALE_RANGE = (0.8, 1.25)
MAX_SHIFT_VOXELS = 3.0
ELASTIC_SIGMA = 2.0          # smoothness of the displacement field, voxels
ELASTIC_MAGNITUDE = 0.35     # largest displacement as a fraction of the node radius
P_AFFINE = P_ELASTIC = 0.5   # per node: affine, elastic or (the rest) unchanged
_TOUCH = np.ones((3, 3, 3), dtype=bool)


def organ_mask(anatomy: np.ndarray) -> np.ndarray:
    """Voxels of organs (every label except air and body)."""
    return ~np.isin(anatomy, NON_ORGAN_LABELS)


def _rotation(angles: np.ndarray) -> np.ndarray:
    cz, cy, cx = np.cos(angles)
    sz, sy, sx = np.sin(angles)
    rz = np.array([[1, 0, 0], [0, cz, -sz], [0, sz, cz]])   # about the z axis (acts on y, x)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[cx, -sx, 0], [sx, cx, 0], [0, 0, 1]])
    return rz @ ry @ rx


Warp = Callable[..., np.ndarray]   # warp(array, order=1, mode="constant") -> array warped like the node


def affine_warp(node: np.ndarray, rng: np.random.Generator) -> tuple[Warp, dict[str, Any]]:
    """A random affine about the node's centre, as a function any array of the node's shape can go through.

    Copy-paste (`augment/copy_paste.py`) warps a CT crop with the same draw as its node mask.
    """
    angles = np.deg2rad(rng.uniform(-ROTATION_DEG, ROTATION_DEG, 3))
    scales = rng.uniform(*SCALE_RANGE, 3)
    shift = rng.uniform(-MAX_SHIFT_VOXELS, MAX_SHIFT_VOXELS, 3)
    forward = _rotation(angles) @ np.diag(scales)
    inverse = np.linalg.inv(forward)
    centre = np.array(ndimage.center_of_mass(node))
    # output voxel o samples input at inverse @ (o - centre - shift) + centre
    offset = centre - inverse @ (centre + shift)

    def warp(array: np.ndarray, order: int = 1, mode: str = "constant") -> np.ndarray:
        return ndimage.affine_transform(array.astype(np.float32), inverse, offset=offset, order=order, mode=mode)

    return warp, {"rotation_deg": np.rad2deg(angles).round(1).tolist(), "scale": scales.round(3).tolist(),
                  "shift_voxels": shift.round(2).tolist()}


def elastic_warp(node: np.ndarray, rng: np.random.Generator) -> tuple[Warp, dict[str, Any]]:
    """A random smooth displacement scaled to the node's radius, as a function like `affine_warp`'s."""
    radius = max(1.0, (3 * node.sum() / (4 * np.pi)) ** (1 / 3))
    magnitude = ELASTIC_MAGNITUDE * radius + 0.5
    field = np.stack([ndimage.gaussian_filter(rng.standard_normal(node.shape), ELASTIC_SIGMA) for _ in range(3)])
    field *= magnitude / max(1e-6, float(np.abs(field).max()))
    coords = np.indices(node.shape, dtype=np.float32) + field

    def warp(array: np.ndarray, order: int = 1, mode: str = "constant") -> np.ndarray:
        return ndimage.map_coordinates(array.astype(np.float32), coords, order=order, mode=mode)

    return warp, {"max_displacement_voxels": round(float(magnitude), 2)}


WARPS: dict[str, Callable[[np.ndarray, np.random.Generator], tuple[Warp, dict[str, Any]]]] = {
    "affine": affine_warp, "elastic": elastic_warp}


def choose_op(rng: np.random.Generator, p_affine: float = P_AFFINE, p_elastic: float = P_ELASTIC) -> str:
    """`affine` with probability `p_affine`, `elastic` with `p_elastic`, else `none` (one draw)."""
    u = rng.random()
    return "affine" if u < p_affine else "elastic" if u < p_affine + p_elastic else "none"


def _warp_node(op: str, node: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    warp, params = WARPS[op](node, rng)
    return warp(node) > 0.5, params


def _node_box(node: np.ndarray, margin: int) -> tuple[slice, ...]:
    idx = np.argwhere(node)
    lo = np.maximum(idx.min(0) - margin, 0)
    hi = np.minimum(idx.max(0) + 1 + margin, node.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def transform_ln_mask(ln: np.ndarray, anatomy: np.ndarray, rng: np.random.Generator, *,
                      p_affine: float = P_AFFINE, p_elastic: float = P_ELASTIC, p_remove: float = 0.5,
                      max_tries: int = 10) -> tuple[np.ndarray, dict[str, Any]]:
    """New LN mask (uint8, same shape) and a JSON-ready record of what was done to each node.

    Per node: affine with probability `p_affine`, elastic with `p_elastic`, else unchanged
    (p_affine + p_elastic <= 1). With two or more nodes one random node is removed with
    probability `p_remove`.
    """
    if ln.shape != anatomy.shape:
        raise ValueError(f"ln {ln.shape} and anatomy {anatomy.shape} must have the same shape")
    if p_affine + p_elastic > 1 + 1e-9:
        raise ValueError("p_affine + p_elastic must be at most 1")
    labels, count = label_components(ln)
    organs = organ_mask(anatomy)
    info: dict[str, Any] = {"nodes_in": count, "removed": None, "nodes": [],
                            "organ_labels": "all anatomy labels except air (0) and body (1)"}
    keep = list(range(1, count + 1))
    if count >= 2 and rng.random() < p_remove:
        removed = int(rng.integers(1, count + 1))
        keep.remove(removed)
        info["removed"] = removed
    out = np.zeros(ln.shape, dtype=bool)
    for number in keep:
        node = labels == number
        others = (labels > 0) & (labels != number) & np.isin(labels, keep)
        op = choose_op(rng, p_affine, p_elastic)
        record: dict[str, Any] = {"node": number, "op": op, "voxels_before": int(node.sum()), "tries": 0,
                                  "accepted": op == "none"}
        new = node
        if op != "none":
            extent = int(np.ptp(np.argwhere(node), axis=0).max()) + 1
            box = _node_box(node, margin=int(np.ceil(0.4 * extent + MAX_SHIFT_VOXELS)) + 2)
            allowed_overlap = int((node & organs).sum())
            blocked = ndimage.binary_dilation(others | out, structure=_TOUCH)[box]
            for attempt in range(1, max_tries + 1):
                local, params = _warp_node(op, node[box], rng)
                record["tries"] = attempt
                if not local.any() or (local & blocked).any() or int((local & organs[box]).sum()) > allowed_overlap:
                    continue
                new = np.zeros_like(node)
                new[box] = local
                record.update(accepted=True, **params)
                break
        record["voxels_after"] = int(new.sum())
        info["nodes"].append(record)
        out |= new
    info["nodes_out"] = label_components(out)[1]
    return out.astype(np.uint8), info
