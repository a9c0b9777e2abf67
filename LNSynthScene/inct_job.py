"""The panel's last in-CT job step: the synthesized nodes put back into the CT the user painted on.

`lnsynth sample --mode in-ct` works on the prepared case (cropped around the nodes and resampled to
1 mm, the model's scale) and returns that case's CT with the nodes synthesized, bit-identical outside
the generated region. The user's CT has its own grid. This step maps the change onto it: for each
result it writes the box of the user's grid that the change touches, with the new values there.
Outside that box the result *is* the user's CT, so the panel builds the full result from the CT node
it already holds (one copy plus the box) instead of reading a full-size file in Slicer's GUI thread,
and the job writes a few small files per sample instead of one CT each.

Runs as a job step: `python -m LNSynthScene.inct_job --run <run folder> --case-id <id>`
(numpy, SimpleITK and LNSynthLib only; never Qt or slicer).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from itertools import product
from pathlib import Path

import numpy as np

from LNSynthLib.cases import CT_FILE, LN_FILE, list_cases, read_meta
from LNSynthLib.errors import InputDataError
from LNSynthLib.jobs.parent_watch import stop_with_parent
from LNSynthLib.jobs.step import run_step
from LNSynthLib.volumes.geometry import Volume

RESULTS_FOLDER = "inct"          # <run>/inct: the change boxes, the node mask and the manifest
MANIFEST = "results.json"
NODES_FILE = "nodes.nrrd"        # the painted nodes on the user's grid, cropped to their box
INPUT_FOLDER = "input"           # what `SceneLogic.export_inputs` wrote (the user's CT and mask)


def _box(mask: np.ndarray, pad: int, shape: Sequence[int]) -> tuple[slice, ...]:
    """The bounding box of `mask` with `pad` voxels more on every side, inside `shape` (from the mask's
    projections on each axis: a few ms on a 1 mm case, where listing every voxel took a fifth of a second)."""
    box = []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(max(int(hit[0]) - pad, 0), min(int(hit[-1]) + 1 + pad, int(shape[axis]))))
    return tuple(box)


def _source_box(prepared_box: tuple[slice, ...], prepared: Volume, source: Volume) -> tuple[slice, ...]:
    """The box of the source grid covering a box of the prepared grid (one voxel more on every side)."""
    corners_zyx = np.array(list(product(*[(s.start, s.stop - 1) for s in prepared_box])), dtype=float)
    points = prepared.geometry.index_to_physical(corners_zyx[:, ::-1])
    index_zyx = source.geometry.physical_to_index(points)[:, ::-1]
    lo = np.maximum(np.floor(index_zyx.min(axis=0)).astype(int) - 1, 0)
    hi = np.minimum(np.ceil(index_zyx.max(axis=0)).astype(int) + 2, np.asarray(source.shape))
    if np.any(hi <= lo):
        raise InputDataError("the synthesized region lies outside the CT", fix="synthesize again from this CT")
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def compose_change(source: Volume, prepared: Volume, result: Volume) -> tuple[Volume, int] | None:
    """The box of `source` that the synthesis changed, with its new values, and how many voxels changed
    (None when nothing changed).

    `prepared` and `result` share the prepared grid and differ only where nodes were generated. Their
    difference is resampled (linear) onto the source grid and added to the source voxels: where it is
    exactly zero the source voxels are kept bit for bit, an integer CT stays integer.
    """
    from LNSynthLib.volumes.grid import resample_onto
    from LNSynthLib.volumes.preprocess import crop

    if prepared.shape != result.shape or not prepared.geometry.isclose(result.geometry):
        raise InputDataError("the in-CT result is not on its prepared case's grid", fix="synthesize again")
    delta = result.array.astype(np.float32) - prepared.array.astype(np.float32)
    changed = delta != 0
    if not changed.any():
        return None
    box = _box(changed, 1, delta.shape)
    sub = crop(source, _source_box(box, prepared, source))
    step = resample_onto(crop(Volume(delta, prepared.geometry), box), sub, "linear").array
    values = sub.array.astype(np.float32) + step
    dtype = source.array.dtype
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        values = np.clip(np.round(values), info.min, info.max)
    out = np.where(step != 0, values.astype(dtype), sub.array)
    return Volume(out, sub.geometry), int((out != sub.array).sum())


def _geometry(volume: Volume) -> dict:
    g = volume.geometry
    return {"shape_zyx": list(volume.shape), "spacing": list(g.spacing), "origin": list(g.origin),
            "direction": list(g.direction), "dtype": str(volume.array.dtype)}


def write_results(run: str | Path, case_id: str) -> Path:
    """For every in-CT sample of `run`, its change box on the user's grid; returns the manifest path."""
    from LNSynthLib.jobs.progress import Progress
    from LNSynthLib.volumes.io import read_volume, write_volume

    run = Path(run)
    out = run / RESULTS_FOLDER
    samples = list_cases(run / "synthetic")
    if not samples:
        raise InputDataError("in-CT sampling wrote no result", path=run / "synthetic",
                             fix="see the log in the work folder")
    source = read_volume(run / INPUT_FOLDER / CT_FILE)
    prepared = read_volume(run / "cases" / case_id / CT_FILE)
    ln = read_volume(run / INPUT_FOLDER / LN_FILE)
    out.mkdir(parents=True, exist_ok=True)
    if (ln.array > 0).any():
        from LNSynthLib.volumes.preprocess import crop

        nodes = crop(Volume((ln.array > 0).astype(np.uint8), ln.geometry), _box(ln.array > 0, 1, ln.shape))
        write_volume(nodes, out / NODES_FILE, overwrite=True, compress=False)
    entries = []
    with Progress("placing the nodes into the CT", len(samples)) as progress:
        for folder in samples:
            composed = compose_change(source, prepared, read_volume(folder / CT_FILE))
            entry = {"name": folder.name, "change": None, "changed_voxels": 0,
                     "region_voxels": int(read_meta(folder).get("region_voxels", 0))}
            if composed is not None:
                write_volume(composed[0], out / f"{folder.name}.nrrd", overwrite=True, compress=False)
                entry.update(change=f"{folder.name}.nrrd", changed_voxels=composed[1])
            entries.append(entry)
            progress.update()
    manifest = out / MANIFEST
    manifest.write_text(json.dumps({"source": _geometry(source), "nodes": NODES_FILE if (out / NODES_FILE).exists()
                                    else None, "results": entries}, indent=2), encoding="utf-8")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="LNSynthScene.inct_job", description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="the synthesis run folder")
    parser.add_argument("--case-id", required=True, help="the prepared case the samples were made from")
    args = parser.parse_args(argv)
    return run_step(lambda: f"in-CT results: {write_results(args.run, args.case_id)}")


if __name__ == "__main__":
    stop_with_parent()   # the panel or the page died without stopping this job: stop too
    raise SystemExit(main())
