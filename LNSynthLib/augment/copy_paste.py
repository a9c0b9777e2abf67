"""Copy-paste augmentation: real annotated nodes cut out and pasted into other fat positions of the training CTs.

The simple baseline a synthesis method has to beat (issue 11, strategy 2). For each real
training case (the *target*) and k < `per_case`, the new case `<target>_copypaste_<k>` is the
target's CT, anatomy and LN mask with `NODES_PER_CASE` donor nodes added:
- a donor node is a lymph-node component of any training case, cut out with its surroundings
  (`MARGIN_VOXELS` more than the warp can move it);
- it goes through the synthetic pipeline's own node transforms (`conditions/transforms.py`:
  affine or elastic or unchanged, with the same probabilities), applied with one draw to its
  mask and its CT crop;
- it is placed where the node lies wholly in the target's body label (fat and unlabelled soft
  tissue; organs, vessels and bowel excluded), at least `ORGAN_CLEARANCE_VOXELS` from every organ
  but the vessels (nodes do touch vessels), not touching another node, with a mean target HU under
  it at most `FAT_MAX_HU` (fat), and its centre within `NEAR_VESSEL_MM` of an artery or vein label (visceral fat along the vessels, where abdominal nodes live; subcutaneous fat is
  far from them). Without a vessel label the vessel condition is dropped and recorded;
- it is blended in softly: weight 1 on the node, falling smoothly to 0 at `BLEND_VOXELS`
  outside it, and 0 on every non-body voxel, so the target's organs stay untouched.
The LN mask gains exactly the pasted node voxels; the anatomy map is unchanged (nodes are body).

The cases are written in the synthetic-case layout (`synthetic: true`, `source_case`, `sample_index`
in case.json), so `nnunet export --synthetic` takes them unchanged. Case k of a target is seeded
from (seed, case id, k) alone, like sampling; complete cases are skipped on a rerun, and each is
written aside and renamed into place (`cases.write_case_folder`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from LNSynthLib.anatomy.groups import BODY, LABEL_NAMES
from LNSynthLib.cases import Case, is_synthetic, list_cases, load_case, missing_files, write_case_folder
from LNSynthLib.conditions.transforms import MAX_SHIFT_VOXELS, WARPS, choose_op, organ_mask
from LNSynthLib.errors import InputDataError
from LNSynthLib.jobs.progress import Progress
from LNSynthLib.volumes.geometry import Volume
from LNSynthLib.volumes.masks import label_components

COPY_PASTE_TAG = "_copypaste_"
NODES_PER_CASE = 2           # donor nodes pasted into each new case
MARGIN_VOXELS = 3            # surroundings cut out with a node, beyond what its warp can move
BLEND_VOXELS = 2.0           # blend weight 1 on the node, 0 this far outside it (smoothstep between)
NEAR_VESSEL_MM = 15.0        # node centre at most this far from an artery/vein label
FAT_MAX_HU = -30.0           # mean target HU under a pasted node: fat is about -190..-30 HU
MAX_PLACEMENT_TRIES = 200    # positions tried per node before it is left out (recorded)
ORGAN_CLEARANCE_VOXELS = 2   # a pasted node keeps this far from organs other than vessels
VESSEL_LABELS = tuple(LABEL_NAMES.index(name) for name in ("arteries", "veins"))
_TOUCH = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class DonorNode:
    """One real node cut out of its case: CT crop (HU), node mask on the crop, where it came from."""

    case_id: str
    number: int
    ct: np.ndarray
    mask: np.ndarray


def _box(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    idx = np.argwhere(mask)
    lo = np.maximum(idx.min(0) - margin, 0)
    hi = np.minimum(idx.max(0) + 1 + margin, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def donor_nodes(cases: list[Case]) -> list[DonorNode]:
    """Every lymph-node component of `cases`, cut out with room for the node transforms."""
    donors = []
    for case in cases:
        labels, count = label_components(case.ln.array)
        for number in range(1, count + 1):
            node = labels == number
            extent = int(np.ptp(np.argwhere(node), axis=0).max()) + 1
            box = _box(node, int(np.ceil(0.4 * extent + MAX_SHIFT_VOXELS)) + MARGIN_VOXELS)
            donors.append(DonorNode(case.case_id, number, case.ct.array[box].astype(np.float32), node[box]))
    return donors


def warp_donor(donor: DonorNode, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(CT, mask) of the donor after one of the synthetic pipeline's node transforms, trimmed to the node."""
    op = choose_op(rng)
    mask, ct, record = donor.mask, donor.ct, {"op": op}
    if op != "none":
        warp, params = WARPS[op](donor.mask, rng)
        warped = warp(donor.mask) > 0.5
        if warped.any():
            mask, ct = warped, warp(donor.ct, order=1, mode="nearest")
            record.update(params)
        else:
            record["op"] = "none (the transform emptied the node)"
    box = _box(mask, int(np.ceil(BLEND_VOXELS)) + 1)
    return ct[box], mask[box], record


def placement_candidates(ct: np.ndarray, anatomy: np.ndarray, spacing_zyx: np.ndarray) -> tuple[np.ndarray, str]:
    """Voxels a pasted node may be centred on, and the rule that made them (recorded per case)."""
    fat = (anatomy == BODY) & (ct <= FAT_MAX_HU)
    vessels = np.isin(anatomy, VESSEL_LABELS)
    if not vessels.any():
        return np.argwhere(fat), "body-label fat (no vessel label in this anatomy)"
    near = ndimage.distance_transform_edt(~vessels, sampling=spacing_zyx) <= NEAR_VESSEL_MM
    return np.argwhere(fat & near), f"body-label fat within {NEAR_VESSEL_MM:g} mm of a vessel"


def room_for_nodes(anatomy: np.ndarray) -> np.ndarray:
    """Body-label voxels at least `ORGAN_CLEARANCE_VOXELS` from every organ but the vessels."""
    organs = organ_mask(anatomy) & ~np.isin(anatomy, VESSEL_LABELS)
    return (anatomy == BODY) & ~ndimage.binary_dilation(organs, structure=_TOUCH, iterations=ORGAN_CLEARANCE_VOXELS)


def paste_node(ct: np.ndarray, anatomy: np.ndarray, ln: np.ndarray, node_ct: np.ndarray, node_mask: np.ndarray,
               candidates: np.ndarray, room: np.ndarray, rng: np.random.Generator) -> tuple[int, ...] | None:
    """Paste one warped node in place (ct, ln changed) at a random valid candidate in `room`; its corner, or None."""
    if not len(candidates):
        return None
    allowed = room & ~ndimage.binary_dilation(ln > 0, structure=_TOUCH)
    shape = np.array(node_mask.shape)
    centre = np.array(ndimage.center_of_mass(node_mask)).round().astype(int)
    for _ in range(MAX_PLACEMENT_TRIES):
        corner = candidates[rng.integers(len(candidates))] - centre
        if (corner < 0).any() or (corner + shape > ct.shape).any():
            continue
        box = tuple(slice(int(c), int(c) + int(n)) for c, n in zip(corner, shape, strict=True))
        if not allowed[box][node_mask].all() or ct[box][node_mask].mean() > FAT_MAX_HU:
            continue
        outside = ndimage.distance_transform_edt(~node_mask)
        t = np.clip(1.0 - outside / BLEND_VOXELS, 0.0, 1.0)
        weight = np.where(node_mask, 1.0, t * t * (3.0 - 2.0 * t) * (anatomy[box] == BODY))
        ct[box] = weight * node_ct + (1.0 - weight) * ct[box]
        ln[box] |= node_mask.astype(ln.dtype)
        return tuple(int(c) for c in corner)
    return None


def copy_paste_case(target: Case, donors: list[DonorNode], rng: np.random.Generator,
                    nodes_per_case: int = NODES_PER_CASE) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]], str]:
    """(CT, LN) of `target` with up to `nodes_per_case` donor nodes pasted, a record per node, the placement rule."""
    ct = target.ct.array.astype(np.float32).copy()
    ln = (target.ln.array > 0).astype(np.uint8)
    anatomy = target.anatomy.array
    spacing_zyx = np.asarray(target.ct.geometry.spacing, float)[::-1]
    room = room_for_nodes(anatomy)
    candidates, rule = placement_candidates(ct, anatomy, spacing_zyx)
    records = []
    for _ in range(nodes_per_case):
        donor = donors[int(rng.integers(len(donors)))]
        node_ct, node_mask, record = warp_donor(donor, rng)
        corner = paste_node(ct, anatomy, ln, node_ct, node_mask, candidates, room, rng)
        records.append({"donor_case": donor.case_id, "donor_node": donor.number, **record,
                        "placed": corner is not None, "corner_zyx": corner, "voxels": int(node_mask.sum())})
    return ct, ln, records, rule


def write_copy_paste_cases(train_root: Path, out_root: Path, per_case: int, seed: int, *,
                           nodes_per_case: int = NODES_PER_CASE, overwrite: bool = False) -> list[Path]:
    """Write `per_case` copy-paste cases per real case of `train_root` into `out_root`; returns their folders."""
    train_root, out_root = Path(train_root), Path(out_root)
    if per_case < 1:
        raise InputDataError(f"per_case must be at least 1, got {per_case}", fix="ask for 1 or more cases per case")
    folders = [f for f in list_cases(train_root) if not is_synthetic(f)]
    if not folders:
        raise InputDataError("no prepared real cases found", path=train_root, fix="run `lnsynth prepare` first")
    out_root.mkdir(parents=True, exist_ok=True)
    wanted = [(f, k, out_root / f"{f.name}{COPY_PASTE_TAG}{k}") for f in folders for k in range(per_case)]
    todo = [w for w in wanted if overwrite or missing_files(w[2])]
    if todo:
        cases = {f.name: load_case(f) for f in folders}
        donors = donor_nodes(list(cases.values()))
        if not donors:
            raise InputDataError("the training cases hold no annotated lymph node to copy", path=train_root,
                                 fix="give training cases with lymph-node masks")
        with Progress("copy_paste", len(todo)) as progress:
            for folder, k, final in todo:
                target = cases[folder.name]
                # The same seeding rule as sampling (`sample_seed`): (seed, case id, k) alone.
                rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(folder.name.encode()), k]))
                ct, ln, records, rule = copy_paste_case(target, donors, rng, nodes_per_case)
                meta = {"synthetic": True, "method": "copy-paste", "source_case": folder.name, "sample_index": k,
                        "seed": int(seed), "nodes_before": label_components(target.ln.array)[1],
                        "nodes_after": label_components(ln)[1], "pasted": records, "placement_rule": rule,
                        "settings": {"nodes_per_case": nodes_per_case, "margin_voxels": MARGIN_VOXELS,
                                     "blend_voxels": BLEND_VOXELS, "near_vessel_mm": NEAR_VESSEL_MM,
                                     "organ_clearance_voxels": ORGAN_CLEARANCE_VOXELS,
                                     "fat_max_hu": FAT_MAX_HU, "transforms": "conditions/transforms.py"}}
                geometry = target.ct.geometry
                write_case_folder(Case(final.name, Volume(ct, geometry), Volume(target.anatomy.array, geometry),
                                       Volume(ln, geometry), meta), final, overwrite)
                progress.update()
    return [w[2] for w in wanted]
