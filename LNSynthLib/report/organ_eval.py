"""Paper 002's learned-correspondence metric: TotalSegmentator on synthetic images, Dice per organ.

TotalSegmentator segments each synthetic CT; its `total` classes are grouped into the same
14-label map that conditioned the sample (`anatomy.groups`), and each organ group (labels 2..13;
air and body come from thresholds, not from TotalSegmentator) is compared with the condition.
Paper 002 scores individual organs against manual labels; here the condition is the grouped map,
so the organs are the groups (liver = liver + gallbladder, …).

It runs only when the TotalSegmentator weights are installed (`anatomy.totalseg`: nothing is ever
downloaded) and otherwise says why in a note. Outputs are kept in the work folder under a name
that holds a digest of the synthetic CT, so a re-evaluation reuses them only for unchanged images.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from LNSynthLib.anatomy.groups import BODY, LABEL_NAMES, NUM_LABELS, totalseg_to_anatomy
from LNSynthLib.anatomy.provenance import case_label_filter
from LNSynthLib.cases import ANATOMY_FILE, CT_FILE, read_meta
from LNSynthLib.volumes.io import read_volume

ORGAN_DICE_MODES = ("auto", "off")   # auto: run when TotalSegmentator weights are installed
ORGAN_LABELS = tuple(range(BODY + 1, NUM_LABELS))
ORGAN_NAMES = tuple(LABEL_NAMES[BODY + 1:])


def totalseg_output_path(work_dir: str | Path, synthetic_folder: str | Path, fast: bool = True) -> Path:
    """Where the TotalSegmentator output of one synthetic case is kept: named by case, mode and CT digest."""
    digest = hashlib.sha256(Path(synthetic_folder, CT_FILE).read_bytes()).hexdigest()[:16]
    mode = "fast" if fast else "full"
    return Path(work_dir) / "totalseg" / f"{Path(synthetic_folder).name}_{mode}_{digest}.nii.gz"


def case_organ_dice(ts_labels: np.ndarray, synthetic_ct_hu: np.ndarray, condition: np.ndarray,
                    label_filter: str = "none") -> dict[str, float]:
    """Dice per organ group present in the condition, for one TotalSegmentator `total` output.

    `label_filter` must be the filter that grouped the condition (`provenance.case_label_filter`):
    with another one a heart or sternum voxel lands in different labels on the two sides.
    """
    from LNSynthLib.metrics.generation import organ_dice  # keeps this module torch-free for the CLI parser

    predicted = totalseg_to_anatomy(ts_labels, synthetic_ct_hu, label_filter)
    return organ_dice(predicted, np.asarray(condition), ORGAN_LABELS, ORGAN_NAMES)


def mean_organ_dice(per_case: Sequence[dict[str, float]]) -> tuple[dict[str, float], dict[str, int]]:
    """Mean Dice per organ over the cases whose condition holds it, and how many cases that was."""
    means, counts = {}, {}
    for name in ORGAN_NAMES:
        values = [case[name] for case in per_case if name in case]
        if values:
            means[name], counts[name] = float(np.mean(values)), len(values)
    return means, counts


def evaluate_organ_dice(folders: Sequence[Path], work_dir: str | Path, *, mode: str = "auto",
                        weights_dir: str | Path | None = None, fast: bool = True,
                        device: str = "cpu", real_root: str | Path | None = None,
                        ) -> tuple[dict[str, float] | None, dict[str, int], str]:
    """(mean Dice per organ or None, cases per organ, note) over synthetic case folders.

    Each prediction is grouped with its condition's label filter, read from the synthetic case.json
    or its source case under `real_root`.
    """
    if mode not in ORGAN_DICE_MODES:
        raise ValueError(f"organ Dice mode must be one of {ORGAN_DICE_MODES}, got {mode!r}")
    if mode == "off":
        return None, {}, ("organ Dice (paper 002) not computed: switched off (`lnsynth evaluate` runs it when "
                          "TotalSegmentator weights are installed)")
    if not folders:
        return None, {}, "organ Dice (paper 002) not computed: no synthetic cases"
    outputs = [totalseg_output_path(work_dir, folder, fast) for folder in folders]
    if not all(out.exists() for out in outputs):
        reason = _weights_missing(weights_dir, fast)
        if reason:
            return None, {}, f"organ Dice (paper 002) not computed: {reason}"
    from LNSynthLib.anatomy.totalseg import run_totalsegmentator
    from LNSynthLib.jobs.progress import Progress

    per_case, filters = [], set()
    with Progress("organ_dice", len(folders)) as progress:
        for folder, out in zip(folders, outputs, strict=True):
            if not out.exists():
                run_totalsegmentator(folder / CT_FILE, out, device=device, fast=fast, weights_dir=weights_dir)
            ct = read_volume(folder / CT_FILE)
            label_filter = case_label_filter(read_meta(folder), real_root)
            filters.add(label_filter)
            per_case.append(case_organ_dice(read_volume(out).array, ct.array, read_volume(folder / ANATOMY_FILE).array,
                                            label_filter))
            progress.update()
    means, counts = mean_organ_dice(per_case)
    resolution = "fast 3 mm" if fast else "full-resolution 1.5 mm"
    note = (f"organ Dice (paper 002): TotalSegmentator ({resolution}) on {len(folders)} synthetic images, grouped "
            f"into the 14-label map with the conditions' label filter ({', '.join(sorted(filters))}) and compared "
            "with each image's condition; mean over the images whose condition holds the organ; TotalSegmentator sees only the synthetic patch, without the body around it")
    return means, counts, note


def _weights_missing(weights_dir: str | Path | None, fast: bool) -> str:
    """Why TotalSegmentator cannot run here (empty when it can); never downloads anything."""
    try:
        from LNSynthLib.anatomy.totalseg import missing_weights, weights_root

        missing = missing_weights(weights_dir, fast)
    except ImportError:
        return "TotalSegmentator is not installed (it comes with LNSynthLib's requirements)"
    if not missing:
        return ""
    names = ", ".join(f"Task {tid} ({folder})" for tid, folder, _ in missing)
    return (f"TotalSegmentator weights are missing in {weights_root(weights_dir)}: {names}; install them offline "
            "as the error of `lnsynth anatomy --ct CT --out OUT` explains, or pass --weights-dir")
