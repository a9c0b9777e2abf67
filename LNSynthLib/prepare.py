"""Prepare one case for LN-DDPM: read, check, build the anatomy map, crop the LN region, resample, write.

The CT stays in HU on disk; windowing to [-1, 1] happens in the model's data loader through
`volumes.preprocess.hu_to_unit`, so prepared cases stay readable and reusable.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from LNSynthLib.anatomy.build import anatomy_from_labels, guess_source
from LNSynthLib.anatomy.fallback import COARSE_WARNING, coarse_anatomy
from LNSynthLib.anatomy.groups import LABEL_NAMES
from LNSynthLib.anatomy.lymph_nodes import lymph_node_components
from LNSynthLib.anatomy.totalseg import run_totalsegmentator, weights_available
from LNSynthLib.atomic import check_writable
from LNSynthLib.cases import ANATOMY_FILE, CT_FILE, LN_FILE, META_FILE, Case, save_case
from LNSynthLib.errors import InputDataError
from LNSynthLib.jobs.progress import Progress
from LNSynthLib.volumes.checks import check_ln_labels, check_ln_mask, check_same_geometry
from LNSynthLib.volumes.geometry import Volume
from LNSynthLib.volumes.io import read_ct, read_volume
from LNSynthLib.volumes.preprocess import PreprocessSettings, crop, ln_region_box, resample

log = logging.getLogger(__name__)
ANATOMY_SOURCES = ("auto", "totalseg", "anatomy14", "coarse", "run-totalseg")
_CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")  # a folder name on every file system


def prepare_volumes(ct: Volume, anatomy: Volume, ln: Volume,
                    settings: PreprocessSettings) -> tuple[Volume, Volume, Volume, dict[str, Any]]:
    """Crop the LN region with the margin and resample all three volumes to the isotropic spacing."""
    box = ln_region_box(ln, settings.margin_mm)
    spacing = (settings.spacing,) * 3
    ct_out = resample(crop(ct, box), spacing, "linear")
    anatomy_out = resample(crop(anatomy, box), spacing, "nearest", default_value=0)
    ln_out = resample(crop(ln, box), spacing, "nearest", default_value=0)
    meta = {
        "settings": settings.as_dict(),
        "source_geometry": {"shape_zyx": list(ct.shape), "spacing_xyz": list(ct.geometry.spacing),
                            "origin_lps": list(ct.geometry.origin), "direction": list(ct.geometry.direction)},
        "crop_box_zyx": [[int(s.start), int(s.stop)] for s in box],
        "shape_zyx": list(ct_out.shape),
        "label_names": LABEL_NAMES,
        "nodes": [asdict(n) for n in lymph_node_components(ln_out)],
    }
    return ct_out, anatomy_out, ln_out, meta


def build_anatomy(ct: Volume, ct_path: str | Path, anatomy_path: str | Path | None = None,
                  anatomy_source: str = "auto", *, device: str = "auto",
                  weights_dir: str | Path | None = None) -> tuple[Volume, str]:
    """14-label anatomy on the CT grid and the source actually used (`coarse` means the fallback)."""
    if anatomy_source not in ANATOMY_SOURCES:
        raise ValueError(f"anatomy_source must be one of {ANATOMY_SOURCES}, got {anatomy_source!r}")
    if anatomy_source in ("totalseg", "anatomy14") and anatomy_path is None:
        raise InputDataError(f"--anatomy-source {anatomy_source} needs a label file", path=ct_path,
                             fix="pass --anatomy FILE, or use --anatomy-source coarse / run-totalseg")
    if anatomy_path is not None and anatomy_source in ("auto", "totalseg", "anatomy14"):
        labels = read_volume(anatomy_path)
        source = guess_source(labels, anatomy_path) if anatomy_source == "auto" else anatomy_source
        return anatomy_from_labels(labels, ct, source, path=anatomy_path, ct_path=ct_path), source
    if anatomy_source == "run-totalseg" or (anatomy_source == "auto" and weights_available(weights_dir)):
        with tempfile.TemporaryDirectory(prefix="lnsynth_ts_") as tmp:
            out = run_totalsegmentator(ct_path, Path(tmp) / "total.nii.gz", device=device, weights_dir=weights_dir)
            return anatomy_from_labels(read_volume(out), ct, "totalseg", path=out, ct_path=ct_path), "totalseg"
    return coarse_anatomy(ct), "coarse"


def prepare_case(ct_path: str | Path, ln_path: str | Path, out_root: str | Path, case_id: str, *,
                 anatomy_path: str | Path | None = None, anatomy_source: str = "auto",
                 settings: PreprocessSettings | None = None, overwrite: bool = False,
                 device: str = "auto", weights_dir: str | Path | None = None) -> Path:
    """Write `<out_root>/<case_id>/{ct,anatomy,ln}.nii.gz + case.json` on the prepared grid; return the folder."""
    settings = settings or PreprocessSettings.train()
    if not _CASE_ID.match(case_id):
        raise InputDataError(f"case id {case_id!r} is not a plain folder name", path=out_root,
                             fix="use up to 128 letters, digits, '_', '-' or '.' (e.g. case_001)")
    folder = Path(out_root) / case_id
    for name in (CT_FILE, ANATOMY_FILE, LN_FILE, META_FILE):
        check_writable(folder / name, overwrite)  # fail before any work, never replace silently
    with Progress("prepare", total=5) as progress:
        ct = read_ct(ct_path)
        ln = read_volume(ln_path)
        check_same_geometry(ln, ct, ln_path, ct_path)
        check_ln_labels(ln, ln_path)
        progress.update(message="read and checked")
        anatomy, source = build_anatomy(ct, ct_path, anatomy_path, anatomy_source, device=device,
                                        weights_dir=weights_dir)
        progress.update(message=f"anatomy from {source}")
        check_ln_mask(ln, anatomy, ln_path)
        ct_p, anatomy_p, ln_p, meta = prepare_volumes(ct, anatomy, ln, settings)
        progress.update(message="cropped and resampled")
        meta.update({
            "case_id": case_id, "synthetic": False, "source": "real",
            "ct_path": str(Path(ct_path).resolve()), "ln_path": str(Path(ln_path).resolve()),
            "anatomy_path": None if anatomy_path is None else str(Path(anatomy_path).resolve()),
            "anatomy_source": source, "anatomy_coarse": source == "coarse",
        })
        if source == "coarse":
            meta["anatomy_warning"] = COARSE_WARNING
        save_case(Case(case_id, ct_p, anatomy_p, ln_p, meta), out_root, overwrite)
        progress.update(message="written")
        progress.update()
    return folder
