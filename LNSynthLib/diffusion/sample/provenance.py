"""What made a synthetic case, and refusing to mix cases made differently in one folder.

Every synthetic case records the checkpoint (path, step and SHA-256 of the file) and the
sampling settings in its case.json. A folder of synthetic cases is one data set: resuming or
sharding into it must use the same checkpoint and settings, otherwise the set would silently mix
two models (and `nnunet export` would train on both). A case counts as done only when all its
files are there.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from LNSynthLib.cases import META_FILE, missing_files, read_meta
from LNSynthLib.errors import InputDataError, OutputExistsError

# case.json keys that must agree between the synthetic cases of one folder.
ORIGIN_KEYS = ("checkpoint_sha256", "ema", "sampler", "steps", "eta", "seed", "transforms", "window_rule")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def origin(meta: dict[str, Any]) -> dict[str, Any]:
    return {key: meta.get(key) for key in ORIGIN_KEYS}


def is_done(folder: Path) -> bool:
    """A synthetic case is done when every case file exists (case.json alone is not enough)."""
    return folder.is_dir() and not missing_files(folder)


def check_same_origin(out_root: Path, wanted: dict[str, Any], tag: str) -> None:
    """Refuse when `out_root` holds synthetic cases (`*<tag>*`) made by another checkpoint or settings."""
    if not out_root.is_dir():
        return
    for folder in sorted(out_root.glob(f"*{tag}*")):
        meta_path = folder / META_FILE
        if folder.name.startswith(".") or not meta_path.is_file():   # a case still being written
            continue
        try:
            found = origin(read_meta(folder))
        except (OSError, InputDataError):   # unreadable: not made by these settings either
            found = {}
        if found != wanted:
            differ = [k for k in ORIGIN_KEYS if found.get(k) != wanted[k]]
            raise OutputExistsError(
                f"the output folder holds synthetic cases made with another {', '.join(differ)}",
                path=folder,
                fix="sample into a new --out folder (one folder per checkpoint and settings), "
                    "or pass --overwrite to replace them")
