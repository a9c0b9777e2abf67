"""Prepare one case for LN-DDPM: read, check, build the anatomy map, crop the LN region, resample, write.

The CT stays in HU on disk, as whole HU in int16 (`cases.PREPARED_CT_DTYPE`: a CT is integer data;
the linear resampling's fractions of a HU are rounded away); windowing to [-1, 1] happens in the
model's data loader through `volumes.preprocess.hu_to_unit`, so prepared cases stay readable and reusable.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from LNSynthLib.anatomy.build import build_anatomy
from LNSynthLib.anatomy.fallback import COARSE_WARNING
from LNSynthLib.anatomy.groups import LABEL_NAMES
from LNSynthLib.anatomy.lymph_nodes import lymph_node_components
from LNSynthLib.atomic import check_writable, sweep_leftovers, sweep_scratch
from LNSynthLib.cases import ANATOMY_FILE, CT_FILE, LN_FILE, META_FILE, PREPARED_CT_DTYPE, Case, save_case
from LNSynthLib.errors import InputDataError
from LNSynthLib.jobs.progress import Progress
from LNSynthLib.names import PLAIN_NAME_RULE, is_plain_name
from LNSynthLib.segmentation.leakage import array_digest
from LNSynthLib.volumes.checks import check_ln_labels, check_ln_mask
from LNSynthLib.volumes.geometry import Volume
from LNSynthLib.volumes.grid import labels_onto
from LNSynthLib.volumes.io import read_patient_ct, read_volume
from LNSynthLib.volumes.preprocess import Box, PreprocessSettings, crop, ln_region_box, resample

log = logging.getLogger(__name__)


def prepare_volumes(ct: Volume, anatomy: Volume, ln: Volume,
                    settings: PreprocessSettings) -> tuple[Volume, Volume, Volume, dict[str, Any]]:
    """Crop the LN region with the margin and resample all three volumes to the isotropic spacing."""
    return prepare_volume_list([ct, anatomy, ln], settings)


def prepare_volume_list(volumes: list[Volume], settings: PreprocessSettings, *, box: Box | None = None,
                        source_geometry: dict[str, Any] | None = None,
                        ) -> tuple[Volume, Volume, Volume, dict[str, Any]]:
    """`prepare_volumes` on `[ct, anatomy, ln]`, replacing each list entry by its crop as it goes.

    When the list holds the only references, each full-size volume is freed as soon as it is cropped,
    so a 512x512x300 CT is never held next to its resampled copies (peak memory). With `box` (and the
    full CT's `source_geometry`) the volumes are that crop already, as `prepare_case` makes them.
    """
    if box is None:
        box = ln_region_box(volumes[2], settings.margin_mm)
        source_geometry = _source_geometry(volumes[0])
        for i in range(3):
            volumes[i] = crop(volumes[i], box)
    spacing = (settings.spacing,) * 3
    ct_out = resample(volumes[0], spacing, "linear")
    anatomy_out = resample(volumes[1], spacing, "nearest", default_value=0)
    ln_out = resample(volumes[2], spacing, "nearest", default_value=0)
    volumes.clear()
    meta = {
        "settings": settings.as_dict(),
        "source_geometry": source_geometry,
        "crop_box_zyx": [[int(s.start), int(s.stop)] for s in box],
        "shape_zyx": list(ct_out.shape),
        "label_names": LABEL_NAMES,
        "nodes": [asdict(n) for n in lymph_node_components(ln_out)],
    }
    return ct_out, anatomy_out, ln_out, meta


def _source_geometry(ct: Volume) -> dict[str, Any]:
    return {"shape_zyx": list(ct.shape), "spacing_xyz": list(ct.geometry.spacing),
            "origin_lps": list(ct.geometry.origin), "direction": list(ct.geometry.direction)}


def sweep_case_leftovers(out_root: str | Path, folder: str | Path) -> None:
    """Remove what a killed `prepare` left: temporary files in the case folders, TotalSegmentator scratch."""
    out_root = Path(out_root)
    sweep_scratch()
    sweep_leftovers(out_root)
    for case in [Path(folder), *(out_root.iterdir() if out_root.is_dir() else ())]:
        if case.is_dir() and not case.name.startswith("."):
            sweep_leftovers(case)


def prepare_case(ct_path: str | Path, ln_path: str | Path, out_root: str | Path, case_id: str, *,
                 anatomy_path: str | Path | None = None, anatomy_source: str = "auto", labels_kind: str = "auto",
                 resample_labels: bool = False, settings: PreprocessSettings | None = None,
                 overwrite: bool = False, device: str = "auto", weights_dir: str | Path | None = None,
                 fast: bool = True, label_filter: str = "none") -> Path:
    """Write `<out_root>/<case_id>/{ct,anatomy,ln}.nii.gz + case.json` on the prepared grid; return the folder.

    `anatomy_source`/`labels_kind`/`fast`/`label_filter` as in `anatomy.build`; the LN mask and a label file go onto the
    CT grid by the grid rule of `volumes.grid.labels_onto` (`resample_labels`: nearest neighbour).
    """
    settings = settings or PreprocessSettings.train()
    if not is_plain_name(case_id):
        raise InputDataError(f"case id {case_id!r} is not a plain folder name", path=out_root,
                             fix=f"use {PLAIN_NAME_RULE} (e.g. case_001)")
    folder = Path(out_root) / case_id
    for name in (CT_FILE, ANATOMY_FILE, LN_FILE, META_FILE):
        check_writable(folder / name, overwrite)  # fail before any work, never replace silently
    with Progress("prepare", total=5) as progress:
        sweep_case_leftovers(out_root, folder)
        ct = read_patient_ct(ct_path)   # HU of air, fat and soft tissue; body size (spacing units)
        source_digest = array_digest(ct.array)   # the source CT by content (train/test leakage check)
        ln = labels_onto(read_volume(ln_path), ct, ln_path, ct_path, resample=resample_labels)
        check_ln_labels(ln, ln_path)
        progress.update(message="read and checked")
        # Crop first: grouping (body/air masks), checks and resampling see only the LN region.
        try:
            box = ln_region_box(ln, settings.margin_mm)
        except InputDataError as exc:   # an empty mask: name the file
            raise InputDataError(exc.problem, path=ln_path, fix=exc.fix) from None
        anatomy, source = build_anatomy(ct, ct_path, anatomy_path, anatomy_source, labels_kind=labels_kind,
                                        resample_labels=resample_labels, device=device, weights_dir=weights_dir,
                                        fast=fast, label_filter=label_filter, box=box)
        progress.update(message=f"anatomy from {source}")
        source_geometry = _source_geometry(ct)
        volumes = [crop(ct, box), anatomy, crop(ln, box)]
        del ct, anatomy, ln   # the full volumes go here; the list holds the only references to the crops
        check_ln_mask(volumes[2], volumes[1], ln_path)
        ct_p, anatomy_p, ln_p, meta = prepare_volume_list(volumes, settings, box=box,
                                                          source_geometry=source_geometry)
        progress.update(message="cropped and resampled")
        meta.update({
            "case_id": case_id, "synthetic": False, "source": "real",
            "ct_path": str(Path(ct_path).resolve()), "ln_path": str(Path(ln_path).resolve()),
            "source_ct_sha256": source_digest,
            "anatomy_path": None if anatomy_path is None else str(Path(anatomy_path).resolve()),
            "anatomy_source": source, "anatomy_coarse": source == "coarse",
            "anatomy_label_filter": label_filter if source == "totalseg" else None,
            "totalseg_model": None if source != "totalseg" or anatomy_path is not None else
            ("fast 3 mm" if fast else "full resolution 1.5 mm"),
        })
        if source == "coarse":
            meta["anatomy_warning"] = COARSE_WARNING
        save_case(Case(case_id, ct_p, anatomy_p, ln_p, meta), out_root, overwrite, ct_dtype=PREPARED_CT_DTYPE)
        progress.update(message="written")
        progress.update()
    return folder
