"""Atomic file writes: a reader never sees a half-written output, and nothing is overwritten silently."""

from __future__ import annotations

import contextlib
import errno
import os
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
