"""A folder of unprepared cases, prepared case by case: resumable and shardable over processes.

Layout: `<raw_root>/<case>/{ct, ln[, anatomy|totalseg]}.<nii.gz|nii|nrrd|mha|mhd>`, one folder per
case (`find_raw`). Each case is prepared into a hidden temporary folder beside its final place and
renamed there when complete, so a killed process leaves every case complete or absent (the next run
removes its leftovers); a rerun skips the complete ones. With `shard` = (i, n), this process does the
cases i, i+n, ... of the sorted folders (`shards.py`, as `lnsynth sample`): n processes of a SLURM
array or torchrun share one folder, TotalSegmentator included, without overlap.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from LNSynthLib.atomic import mark_output_folder, remove_output_folder, sweep_leftovers, temp_folder
from LNSynthLib.cases import META_FILE
from LNSynthLib.errors import InputDataError
from LNSynthLib.shards import shard_items

RAW_NAMES = {"ct": ("ct",), "ln": ("ln", "lymph_nodes", "ln_mask"), "anatomy": ("anatomy", "totalseg", "seg_total")}
RAW_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")
WRITTEN_BY = "lnsynth prepare"


def find_raw(folder: Path, kind: str) -> Path | None:
    """The `kind` file (`ct`, `ln`, `anatomy`) of an unprepared case folder, None when it has none."""
    for stem in RAW_NAMES[kind]:
        for suffix in RAW_SUFFIXES:
            if (folder / f"{stem}{suffix}").exists():
                return folder / f"{stem}{suffix}"
    return None


def find_raw_ct(folder: Path) -> Path | None:
    """The CT file of an unprepared case folder (None when it has none)."""
    return find_raw(folder, "ct")


def raw_case_folders(raw_root: str | Path) -> list[Path]:
    """The case folders of `raw_root`, sorted (hidden ones are not cases); refused when there are none."""
    raw_root = Path(raw_root)
    folders = sorted(p for p in raw_root.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if raw_root.is_dir() else []
    if not folders:
        raise InputDataError("no case folders found", path=raw_root,
                             fix="give one folder per case holding ct.nii.gz and ln.nii.gz (anatomy optional)")
    return folders


def prepare_raw_folder(raw_root: str | Path, out_root: str | Path, *, shard: tuple[int, int] = (0, 1),
                       overwrite: bool = False, **case_options: Any) -> list[Path]:
    """Prepare this shard's cases of `raw_root` into `out_root/<case>`; returns their folders, done or skipped.

    `case_options` go to `prepare.prepare_case` (anatomy source, device, settings...); a case folder's own
    anatomy file is its `anatomy_path`. Complete cases are kept unless `overwrite`.
    """
    from LNSynthLib.prepare import prepare_case

    out_root = Path(out_root)
    mine = shard_items(raw_case_folders(raw_root), shard)
    out_root.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(out_root)   # temporary case folders of killed runs (a live shard's stay)
    folders = []
    for folder in mine:
        final = out_root / folder.name
        folders.append(final)
        if (final / META_FILE).exists() and not overwrite:
            continue
        ct, ln = find_raw(folder, "ct"), find_raw(folder, "ln")
        if ct is None or ln is None:
            raise InputDataError("case folder needs a CT and a lymph-node mask", path=folder,
                                 fix="name them ct.nii.gz and ln.nii.gz (or .nrrd/.mha)")
        with temp_folder(folder.name, parent=out_root) as scratch:
            made = prepare_case(ct, ln, scratch, folder.name, anatomy_path=find_raw(folder, "anatomy"),
                                **case_options)
            mark_output_folder(made, WRITTEN_BY)   # so that --overwrite may replace it later
            _move_into_place(made, final, overwrite)
    return folders


def _move_into_place(made: Path, final: Path, overwrite: bool) -> None:
    """Rename the complete case onto `final`: an incomplete leftover there (ours) is replaced, a complete one
    that another process finished meanwhile is kept unless `overwrite`."""
    if final.exists():
        if (final / META_FILE).exists() and not overwrite:
            return
        remove_output_folder(final)   # refuses a folder LNSynth did not write
    os.replace(made, final)
