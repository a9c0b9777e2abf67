"""Prepared cases on disk: the hand-over format between preparation, LN-DDPM and nnU-Net export.

A prepared case is a folder `<root>/<case_id>/` holding, on one common grid
(1 mm isotropic after the paper's preprocessing):
- `ct.nii.gz`       CT in HU: int16 (whole HU, `lnsynth prepare`) or float32 (synthetic, phantom and
                    older cases); `case.json` names it as `ct_dtype`, and `load_case` gives float32 either way,
- `anatomy.nii.gz`  14-label anatomy map (uint8, values 0..13, see `LNSynthLib.anatomy.groups`),
- `ln.nii.gz`       lymph-node mask (uint8, 0/1),
- `case.json`       where it came from and how it was prepared.
Synthetic cases use the same layout (plus `synthetic: true` in case.json).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from LNSynthLib.atomic import (
    mark_output_folder,
    remove_output_folder,
    sweep_leftovers,
    temp_prefix,
    write_text_atomic,
)
from LNSynthLib.errors import InputDataError
from LNSynthLib.volumes.geometry import Volume
from LNSynthLib.volumes.io import read_volume, write_volumes

CT_FILE = "ct.nii.gz"
ANATOMY_FILE = "anatomy.nii.gz"
LN_FILE = "ln.nii.gz"
META_FILE = "case.json"
CASE_FILES = (CT_FILE, ANATOMY_FILE, LN_FILE, META_FILE)


@dataclass
class Case:
    case_id: str
    ct: Volume
    anatomy: Volume
    ln: Volume
    meta: dict[str, Any] = field(default_factory=dict)


CT_DTYPES = ("float32", "int16")
PREPARED_CT_DTYPE = "int16"      # `lnsynth prepare` (real CTs); sampled and phantom cases stay float32
# Whole HU: below CT noise (~10 HU) and the 1 HU display step; a third of float32's write time, a quarter of its size.
INT16_HU_TOLERANCE = 0.5


def ct_for_disk(ct: np.ndarray, ct_dtype: str) -> np.ndarray:
    """The CT array as stored: float32 as is, or int16 rounded to whole HU (within `INT16_HU_TOLERANCE`)."""
    if ct_dtype not in CT_DTYPES:
        raise ValueError(f"ct_dtype must be one of {CT_DTYPES}, got {ct_dtype!r}")
    if ct_dtype == "float32":
        return np.asarray(ct, dtype=np.float32)
    info = np.iinfo(np.int16)
    rounded = np.rint(ct)   # one temporary, rounded and clipped in place (peak memory)
    np.clip(rounded, info.min, info.max, out=rounded)
    return rounded.astype(np.int16)


def save_case(case: Case, root: str | Path, overwrite: bool = False, ct_dtype: str = "float32") -> Path:
    """Write the case folder; each file is written atomically, case.json last (it marks completeness).

    `ct_dtype` (`CT_DTYPES`) is how the CT is stored; it is recorded in case.json as `ct_dtype`.
    """
    folder = Path(root) / case.case_id
    ct = ct_for_disk(case.ct.array, ct_dtype)   # before any write: a bad dtype leaves nothing behind
    meta = {**case.meta, "ct_dtype": ct_dtype}
    # All three at once (the CT's gzip, the longest, next to the label maps'), renamed into place together.
    write_volumes([(Volume(ct, case.ct.geometry), folder / CT_FILE),
                   (Volume(case.anatomy.array.astype(np.uint8), case.anatomy.geometry), folder / ANATOMY_FILE),
                   (Volume((case.ln.array > 0).astype(np.uint8), case.ln.geometry), folder / LN_FILE)], overwrite)
    write_text_atomic(folder / META_FILE, json.dumps(meta, indent=2, default=str), overwrite)
    return folder


def write_case_folder(case: Case, final: Path, overwrite: bool) -> None:
    """Write a generated case into a hidden temporary folder, then rename it onto `final` (no half-written case).

    Sampling and copy-paste augmentation write their cases this way; a complete case already at
    `final` is refused unless `overwrite`, an incomplete leftover is replaced.
    """
    tmp_name = temp_prefix(final.name) + "case"
    tmp = final.parent / tmp_name
    if tmp.exists():
        shutil.rmtree(tmp)
    sweep_leftovers(final.parent)   # what a killed writer left here
    try:
        save_case(Case(tmp_name, case.ct, case.anatomy, case.ln, case.meta), final.parent)
        mark_output_folder(tmp, "lnsynth " + ("sample" if case.meta.get("synthetic") else "augmentation"))
        if final.exists():
            if not overwrite and not missing_files(final):
                raise InputDataError("generated case appeared while it was being written", path=final,
                                     fix="make sure only one job writes to this folder")
            remove_output_folder(final)   # an incomplete leftover of ours, or overwrite requested
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def read_meta(folder: str | Path) -> dict[str, Any]:
    """The case's `case.json` (the one reader of it); a missing or damaged file names itself."""
    path = Path(folder) / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputDataError("case folder has no case.json", path=path,
                             fix="give a folder written by `lnsynth prepare`, `lnsynth sample` or `lnsynth phantom`") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputDataError(f"case.json is not valid JSON ({exc})", path=path,
                             fix="prepare or sample this case again") from exc
    if not isinstance(meta, dict):
        raise InputDataError("case.json does not hold a JSON object", path=path,
                             fix="prepare or sample this case again")
    return meta


def is_synthetic(folder: str | Path) -> bool:
    """Whether the case was written by `lnsynth sample` (its case.json says so; the folder name is not asked)."""
    return read_meta(folder).get("synthetic") is True


def missing_files(folder: str | Path) -> list[str]:
    """Which of the case files are absent (empty: the case is complete)."""
    return [name for name in CASE_FILES if not (Path(folder) / name).is_file()]


def load_case(folder: str | Path) -> Case:
    folder = Path(folder)
    missing = missing_files(folder)
    if missing:
        raise InputDataError(f"prepared case is incomplete, missing {', '.join(missing)}", path=folder,
                             fix="run `lnsynth prepare` again for this case")
    meta = read_meta(folder)
    ct = read_volume(folder / CT_FILE)   # int16 (prepared) or float32 (older, synthetic): float32 for every user
    return Case(folder.name, Volume(ct.array.astype(np.float32, copy=False), ct.geometry),
                read_volume(folder / ANATOMY_FILE), read_volume(folder / LN_FILE), meta)


def list_cases(root: str | Path) -> list[Path]:
    """Complete case folders under `root`, sorted by name.

    Hidden folders are never cases: they are a writer's temporary folders (a killed one leaves them,
    complete with case.json) or the system's own.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputDataError("folder of prepared cases not found", path=root,
                             fix="run `lnsynth prepare` first or check the path")
    return sorted(p for p in root.iterdir()
                  if not p.name.startswith(".") and p.is_dir() and (p / META_FILE).exists())
