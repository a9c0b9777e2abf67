"""Synthetic patches pasted into their source CT as a job step, written as the box each paste changes.

`paste_patch` blends a patch into the CT: outside the patch's physical extent the result is the
CT, bit for bit. So a pasted sample is fully described by the CT it came from plus one small box
of the CT grid (the pasted values there) and its lymph-node mask (cropped to its nodes). This step
writes exactly that for every sample of a synthesis, in the job process: whoever shows a result
(Slicer's panel, one at a time) needs no resampling and no full-size file, only a copy of the CT
it already holds with the box written in.

Job step: `python -m LNSynthLib.segmentation.paste_results --synthetic S --ct CT --ln LN --out OUT`
(numpy, SimpleITK and LNSynthLib only).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np

from LNSynthLib.errors import InputDataError
from LNSynthLib.jobs.step import run_step
from LNSynthLib.segmentation.paste import DEFAULT_BLEND_MM, paste_patch
from LNSynthLib.volumes.geometry import Volume

MANIFEST = "pasted.json"

Box = tuple[slice, slice, slice]


def paste_box(ct: Volume, patch: Volume) -> Box:
    """The box of the CT grid that pasting `patch` can change: the patch's physical extent (its
    voxels' outer faces), one CT voxel more on every side, clipped to the CT."""
    faces = [(-0.5, n - 0.5) for n in patch.shape]
    corners_zyx = np.array(list(product(*faces)), dtype=float)
    points = patch.geometry.index_to_physical(corners_zyx[:, ::-1])
    index_zyx = ct.geometry.physical_to_index(points)[:, ::-1]
    lo = np.maximum(np.floor(index_zyx.min(axis=0)).astype(int) - 1, 0)
    hi = np.minimum(np.ceil(index_zyx.max(axis=0)).astype(int) + 2, np.asarray(ct.shape))
    if np.any(hi <= lo):
        raise InputDataError("the synthetic patch lies outside its source CT",
                             fix="paste a patch into the case it was sampled from (case.json source_case)")
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))  # type: ignore[return-value]


def nonzero_box(mask: np.ndarray) -> Box | None:
    """The smallest box holding every non-zero voxel (None: the mask is empty)."""
    box = []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        if not len(hit):
            return None
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)  # type: ignore[return-value]


@dataclass
class PastedSample:
    """One sample pasted into the CT: the changed box (pasted values), and the whole pasted LN mask
    cropped to its nodes (None when it has none)."""

    ct_box: Volume
    ln: Volume | None
    changed_voxels: int


def paste_sample(ct: Volume, ln_ct: Volume, patch: Volume, ln_patch: Volume,
                 blend_mm: float = DEFAULT_BLEND_MM) -> PastedSample:
    """`paste_patch` computed on the box it can change only: same values, CT-box-sized memory."""
    from LNSynthLib.volumes.preprocess import crop

    if ct.shape != ln_ct.shape or not ct.geometry.isclose(ln_ct.geometry):
        raise InputDataError("CT and its lymph-node mask are not on the same grid",
                             fix="give the source case's CT and lymph-node mask")
    box = paste_box(ct, patch)
    sub_ct, sub_ln = crop(ct, box, copy=False), crop(ln_ct, box, copy=False)
    pasted_ct, pasted_ln = paste_patch(sub_ct, patch, sub_ln, ln_patch, blend_mm)
    changed = int((pasted_ct.array != sub_ct.array.astype(np.float32)).sum())
    ln = (ln_ct.array > 0).astype(np.uint8)
    ln[box] = pasted_ln.array
    where = nonzero_box(ln)
    ln_out = None if where is None else crop(Volume(ln, ct.geometry), where)
    return PastedSample(pasted_ct, ln_out, changed)


def _geometry(volume: Volume) -> dict:
    g = volume.geometry
    return {"shape_zyx": list(volume.shape), "spacing": list(g.spacing), "origin": list(g.origin),
            "direction": list(g.direction), "dtype": str(volume.array.dtype)}


def write_paste_results(synthetic_root: str | Path, ct_path: str | Path, ln_path: str | Path,
                        out: str | Path, blend_mm: float = DEFAULT_BLEND_MM) -> Path:
    """Paste every synthetic case of `synthetic_root` into the CT; write `<name>_ct.nrrd` (the changed
    box), `<name>_ln.nrrd` (the pasted mask, cropped) and the manifest into `out`; returns the manifest."""
    from LNSynthLib.cases import CT_FILE, LN_FILE, list_cases
    from LNSynthLib.jobs.progress import Progress
    from LNSynthLib.volumes.io import read_volume, write_volume

    out = Path(out)
    folders = list_cases(synthetic_root)
    if not folders:
        raise InputDataError("sampling wrote no synthetic case", path=synthetic_root,
                             fix="see the log in the work folder")
    ct, ln_ct = read_volume(ct_path), read_volume(ln_path)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    with Progress("pasting the samples into the CT", len(folders)) as progress:
        for folder in folders:
            sample = paste_sample(ct, ln_ct, read_volume(folder / CT_FILE), read_volume(folder / LN_FILE), blend_mm)
            entry = {"name": folder.name, "ct": f"{folder.name}_ct.nrrd", "ln": None,
                     "changed_voxels": sample.changed_voxels}
            write_volume(sample.ct_box, out / entry["ct"], overwrite=True, compress=False)
            if sample.ln is not None:
                entry["ln"] = f"{folder.name}_ln.nrrd"
                write_volume(sample.ln, out / entry["ln"], overwrite=True, compress=False)
            entries.append(entry)
            progress.update()
    manifest = out / MANIFEST
    manifest.write_text(json.dumps({"source": _geometry(ct), "blend_mm": blend_mm, "results": entries}, indent=2),
                        encoding="utf-8")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="LNSynthLib.segmentation.paste_results",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", required=True, help="folder of synthetic cases (`lnsynth sample --out`)")
    parser.add_argument("--ct", required=True, help="the source CT the samples were made from")
    parser.add_argument("--ln", required=True, help="the source CT's lymph-node mask (same grid)")
    parser.add_argument("--out", required=True, help="folder for the pasted boxes and the manifest")
    parser.add_argument("--blend-mm", type=float, default=DEFAULT_BLEND_MM)
    args = parser.parse_args(argv)
    return run_step(lambda: "pasted samples: "
                    f"{write_paste_results(args.synthetic, args.ct, args.ln, args.out, args.blend_mm)}")


if __name__ == "__main__":
    raise SystemExit(main())
