"""The 14-label anatomy of a CT, built one way for `lnsynth anatomy`, `lnsynth prepare` and the pipeline.

One vocabulary (`ANATOMY_SOURCES`, declared in `anatomy.choices`), each word with one meaning:
- `file`: group an existing label file (`LABEL_KINDS`: a TotalSegmentator `total` output or a
  ready 14-label map; `auto` guesses from its values);
- `totalseg`: run TotalSegmentator on the CT (offline weights needed);
- `coarse`: the weights-free threshold fallback (flagged; a demo-quality stand-in);
- `auto`: the file when one is given, else TotalSegmentator when its weights are there, else coarse.
A label file goes onto the CT grid by the one grid rule of `volumes.grid.labels_onto`.
Two more choices, recorded in each prepared case.json: TotalSegmentator's fast 3 mm model or its
full-resolution 1.5 mm models (`fast`; the paper pipeline uses full resolution), and
`label_filter` (`groups.LABEL_FILTERS`: `none` groups every class, `abdominal` is paper 000's
filtering to abdominal labels).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from LNSynthLib.anatomy.choices import ANATOMY_SOURCES, LABEL_KINDS, OLD_SOURCES, SOURCES
from LNSynthLib.anatomy.groups import BODY, LABEL_FILTERS, NUM_LABELS, totalseg_to_anatomy
from LNSynthLib.atomic import temp_folder
from LNSynthLib.errors import InputDataError
from LNSynthLib.volumes.geometry import Volume
from LNSynthLib.volumes.grid import labels_onto
from LNSynthLib.volumes.preprocess import Box, crop


def guess_source(label_volume: Volume, path: str | Path | None = None) -> str:
    """`anatomy14` when every value is a valid anatomy label (0..13), `totalseg` for a TotalSegmentator map.

    A map with values >= 14 whose largest non-zero label is 1 (`body`: most of an anatomy map, the
    small spleen in TotalSegmentator's numbering) is a 14-label map with stray values; re-reading it
    as TotalSegmentator ids would scramble every organ, so it is refused instead of guessed.
    """
    labels = np.asarray(label_volume.array)
    if labels.size == 0 or int(labels.max()) < NUM_LABELS:
        return "anatomy14"
    values, counts = np.unique(labels[labels != 0], return_counts=True)
    if values[np.argmax(counts)] == BODY:
        stray = [v for v in values.tolist() if v >= NUM_LABELS or v < 0]
        shown = ", ".join(f"{v:g}" for v in stray[:8]) + (", ..." if len(stray) > 8 else "")
        raise InputDataError(
            f"looks like a 14-label anatomy map (mostly label 1, body) but also holds value(s) {shown}, outside "
            f"0..{NUM_LABELS - 1}; it is not clear whether it is a 14-label map or a TotalSegmentator map",
            path=path, fix="fix the stray values (labels must be 0..13), or state the kind with --labels-kind "
                           "anatomy14 / totalseg")
    return "totalseg"


def anatomy_from_labels(label_volume: Volume, ct: Volume, source: str = "totalseg", *,
                        path: str | Path | None = None, ct_path: str | Path | None = None,
                        resample: bool = False, label_filter: str = "none", box: Box | None = None) -> Volume:
    """14-label anatomy (uint8) on the CT grid from a TotalSegmentator output or an existing 14-label map.

    `label_filter` applies to a TotalSegmentator output only (a 14-label map is used as it is).
    `box`: group only this crop of the CT grid (`prepare` crops the LN region before any full-volume work);
    the result then lies on the crop's grid.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    label_volume = labels_onto(label_volume, ct, path, ct_path, resample=resample)
    if box is not None:
        label_volume, ct = crop(label_volume, box, copy=False), crop(ct, box, copy=False)   # only read here
    labels = np.asarray(label_volume.array)
    if np.issubdtype(labels.dtype, np.floating):
        if not np.all(np.isfinite(labels)) or not np.array_equal(labels, np.round(labels)):
            raise InputDataError("label map holds non-integer values", path=path,
                                 fix="give a label map (integer voxel values), not an image")
    if labels.size and labels.min() < 0:
        raise InputDataError("label map holds negative values", path=path, fix="give a label map with values >= 0")
    if source == "anatomy14":
        if labels.size and labels.max() >= NUM_LABELS:
            stray = np.unique(labels[labels >= NUM_LABELS])
            raise InputDataError(
                f"has label(s) {', '.join(f'{v:g}' for v in stray[:8])}, but a 14-label anatomy map has values "
                f"0..{NUM_LABELS - 1}",
                path=path, fix="pass --labels-kind totalseg if this is a TotalSegmentator 'total' output")
        return Volume(labels.astype(np.uint8), ct.geometry)
    try:
        grouped = totalseg_to_anatomy(labels, ct.array, label_filter)   # no 8-byte copy: it casts to a small index type
    except ValueError as exc:
        raise InputDataError(f"is not a TotalSegmentator 'total' label map ({exc})", path=path,
                             fix="give the multi-label output of `TotalSegmentator --ml` (task total), or "
                                 "pass --labels-kind anatomy14 for a ready 14-label map") from exc
    return Volume(grouped, ct.geometry)


def build_anatomy(ct: Volume, ct_path: str | Path, labels_path: str | Path | None = None, source: str = "auto", *,
                  labels_kind: str = "auto", resample_labels: bool = False, device: str = "auto",
                  weights_dir: str | Path | None = None, fast: bool = True,
                  label_filter: str = "none", box: Box | None = None) -> tuple[Volume, str]:
    """14-label anatomy on the CT grid (or on its crop `box`) and what it came from: `totalseg`, `anatomy14` or
    `coarse`. TotalSegmentator and the coarse fallback see the whole CT; only the grouping is limited to `box`."""
    from LNSynthLib.anatomy.fallback import COARSE_WARNING, coarse_anatomy
    from LNSynthLib.anatomy.totalseg import run_totalsegmentator, weights_available
    from LNSynthLib.volumes.io import read_volume

    source, labels_kind = OLD_SOURCES.get(source, (source, labels_kind))
    if source not in ANATOMY_SOURCES or labels_kind not in LABEL_KINDS or label_filter not in LABEL_FILTERS:
        raise ValueError(f"source must be one of {ANATOMY_SOURCES}, labels_kind one of {LABEL_KINDS} and "
                         f"label_filter one of {LABEL_FILTERS}, got {source!r}, {labels_kind!r}, {label_filter!r}")
    if source == "file" and labels_path is None:
        raise InputDataError("--anatomy-source file needs a label file", path=ct_path,
                             fix="pass the label file (--anatomy / --labels), or use --anatomy-source totalseg "
                                 "(run TotalSegmentator) or coarse")
    if source in ("totalseg", "coarse") and labels_path is not None:
        raise InputDataError(f"--anatomy-source {source} makes the anatomy itself, but a label file was given too",
                             path=labels_path, fix="use --anatomy-source file (or auto) to use the file, or drop it")
    if labels_path is not None:
        labels = read_volume(labels_path)
        kind = guess_source(labels, labels_path) if labels_kind == "auto" else labels_kind
        return anatomy_from_labels(labels, ct, kind, path=labels_path, ct_path=ct_path,
                                   resample=resample_labels, label_filter=label_filter, box=box), kind
    if source == "totalseg" or (source == "auto" and weights_available(weights_dir, fast)):
        with temp_folder("lnsynth_ts") as tmp:
            out = run_totalsegmentator(ct_path, Path(tmp) / "total.nii.gz", device=device, fast=fast,
                                       weights_dir=weights_dir)
            return anatomy_from_labels(read_volume(out), ct, "totalseg", path=out, ct_path=ct_path,
                                       label_filter=label_filter, box=box), "totalseg"
    print(f"lnsynth: warning: {COARSE_WARNING}", file=sys.stderr)
    coarse = coarse_anatomy(ct)
    return (coarse if box is None else crop(coarse, box)), "coarse"
