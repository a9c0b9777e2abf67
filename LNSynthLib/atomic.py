"""Atomic file writes: a reader never sees a half-written output, and nothing is overwritten silently.

This is also the one home of `--overwrite` for folders: a folder the project creates as one output
(an nnU-Net dataset, a generated case) gets the marker `OUTPUT_MARKER`, and `remove_output_folder`
only ever removes a folder that holds it. A folder of the user's that happens to sit where an
output goes (`--name x/../../../victim`, a case id that matches their own folder) is refused.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from LNSynthLib.errors import OutputExistsError, OutputWriteError

# errno values of a write that ran out of room: disk full, file-size limit, quota.
NO_ROOM = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
NO_ROOM_FIX = "free disk space (or raise the file-size / quota limit: `ulimit -f`) and run the command again"


def _read_umask() -> int:
    """The process umask without changing it (Linux reports it in /proc; elsewhere set-and-restore)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_writable(path: str | Path, overwrite: bool = False) -> Path:
    """Return `path`, refusing an existing file unless `overwrite` is set."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(
            "output already exists and would be replaced",
            path=path,
            fix="choose another output path, delete the file, or pass --overwrite",
        )
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds.

    The temporary file keeps the final suffixes (e.g. `.nii.gz`) so writers that pick the
    format from the extension (SimpleITK, torch, matplotlib) behave as for the real name.
    """
    path = check_writable(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            yield tmp
        except OSError as exc:
            if exc.errno not in NO_ROOM:
                raise
            raise OutputWriteError(f"could not be written completely ({exc.strerror}); nothing was kept",
                                   path=path, fix=NO_ROOM_FIX) from exc
        # mkstemp makes the file private (0600); give it the mode a plain open() would (0666 minus the umask),
        # so prepared cases, datasets and results are readable by whoever may read the folder.
        os.chmod(tmp, 0o666 & ~_read_umask())
        if overwrite is False and path.exists():
            raise OutputExistsError("output appeared while it was being written", path=path,
                                    fix="make sure only one job writes to this folder")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str, overwrite: bool = False) -> Path:
    """Write a text file atomically (JSON, Markdown, CSV)."""
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


OUTPUT_MARKER = ".lnsynth_output.json"   # hidden: listers of cases and datasets never pick it up


def mark_output_folder(folder: str | Path, written_by: str) -> Path:
    """Record that `folder` is an output the project made (`written_by`: the command), so it may replace it."""
    return write_text_atomic(Path(folder) / OUTPUT_MARKER, json.dumps({"written_by": written_by}), overwrite=True)


def check_removable(folder: str | Path) -> None:
    """Raise unless `folder` is absent, empty or marked as the project's output (never a link)."""
    folder = Path(folder)
    if folder.is_symlink():
        raise OutputExistsError("is a symbolic link, not an output folder LNSynth made; it is not removed",
                                path=folder, fix="choose another output name, or remove the link yourself")
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return
    if not (folder / OUTPUT_MARKER).is_file():
        raise OutputExistsError(f"was not written by LNSynth (it holds no {OUTPUT_MARKER}), so it is not removed "
                                "or replaced, even with --overwrite", path=folder,
                                fix="choose another output name or folder, or move this folder away yourself")


def remove_output_folder(folder: str | Path) -> None:
    """Remove a folder the project wrote (`check_removable` first); the one place `--overwrite` deletes folders."""
    folder = Path(folder)
    check_removable(folder)
    if folder.exists():
        shutil.rmtree(folder)
