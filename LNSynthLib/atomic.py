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
import re
import shutil
import socket
import tempfile
import zlib
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


# Temporary names: hidden (no lister of cases, datasets or runs picks them up) and tagged with the host and
# process that made them, so the next run in the folder removes what a killed one left (`sweep_leftovers`).
TEMP_TAG = "lnstmp"
_TEMP_RE = re.compile(r"^\..+\." + TEMP_TAG + r"-([0-9a-f]{4})-(\d+)-")
# What a temporary name adds to the final one at most (pid_max is 2**22 on Linux; mkstemp adds 8 characters).
TEMP_NAME_EXTRA = len(f"..{TEMP_TAG}-0000-4194304-") + 8 + len(".tmp")
_OLD_TEMP_RE = re.compile(r"^\..+\.tmp-(\d+)$")   # `write_case_folder`'s name before the tag


def _host_tag() -> str:
    return f"{zlib.crc32(socket.gethostname().encode()) & 0xFFFF:04x}"


def temp_prefix(name: str) -> str:
    """The start of a temporary name for `name` made by this process (`mkstemp` adds random characters)."""
    return f".{name}.{TEMP_TAG}-{_host_tag()}-{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # someone else's live process
        return True
    return True


def sweep_leftovers(folder: str | Path) -> list[Path]:
    """Remove temporary files and folders in `folder` that a process of this host left when it was killed.

    Only names made by `temp_prefix` (or the older `.<name>.tmp-<pid>`) whose process is gone are
    removed; a live writer's temporary files, another host's, and everything else stay. Returns
    what was removed.
    """
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return removed
    host = _host_tag()
    for entry in entries:
        if not entry.name.startswith("."):
            continue
        match = _TEMP_RE.match(entry.name)
        if match:
            if match.group(1) != host:
                continue
            pid = int(match.group(2))
        else:
            old = _OLD_TEMP_RE.match(entry.name)
            if not old:
                continue
            pid = int(old.group(1))
        if pid == os.getpid() or _alive(pid):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:   # another sweeper was first
            continue
        removed.append(path)
    return removed


def temp_folder(name: str, parent: str | Path | None = None) -> tempfile.TemporaryDirectory:
    """A scratch folder (in `parent`, default the system's temporary folder) that `sweep_leftovers` of that
    folder removes once this process is gone, e.g. killed in the middle of a TotalSegmentator run."""
    return tempfile.TemporaryDirectory(prefix=temp_prefix(name), dir=None if parent is None else str(parent))


def sweep_scratch() -> list[Path]:
    """`sweep_leftovers` of the system's temporary folder (`temp_folder`'s default)."""
    return sweep_leftovers(tempfile.gettempdir())


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
    fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp" + suffix, dir=path.parent)
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
