"""Input paths are checked before anything opens them: a missing path or a named pipe fails at once.

Opening a FIFO for reading blocks until a writer appears, so a pipe given by mistake (or a
device node, or a socket) would hang a job forever; refusing everything that is not a regular
file or a folder avoids that for every reader (volumes, checkpoints, configs).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from LNSynthLib.errors import InputDataError


def check_input_path(path: str | Path, *, folder_ok: bool = True) -> Path:
    """Return `path` if it is a regular file (or a folder when `folder_ok`); else raise InputDataError."""
    path = Path(path)
    try:
        mode = path.stat().st_mode  # follows symlinks: a link to a regular file is fine
    except FileNotFoundError:
        raise InputDataError("file not found", path=path,
                             fix="check the path (a DICOM series is given as its folder)") from None
    except OSError as exc:
        raise InputDataError(f"cannot be accessed ({exc.strerror})", path=path,
                             fix="check the path and its permissions") from None
    if stat.S_ISDIR(mode):
        if folder_ok:
            _check_readable(path, folder=True)
            return path
        raise InputDataError("is a folder, a file is needed", path=path, fix="give the file inside the folder")
    if not stat.S_ISREG(mode):
        kind = "a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise InputDataError(f"is {kind}, not a regular file (reading it could wait forever)", path=path,
                             fix="give the image, mask or checkpoint file itself (save the data to a file first)")
    _check_readable(path, folder=False)
    return path


def _check_readable(path: Path, *, folder: bool) -> None:
    """It exists, so a reader failing later would say "does not exist" (ITK does): try it here and say why."""
    try:
        if folder:
            os.listdir(path)
        else:
            with open(path, "rb"):
                pass
    except OSError as exc:
        raise InputDataError(f"exists but cannot be read ({exc.strerror})", path=path,
                             fix="check its permissions (`ls -l`; e.g. `chmod u+r`) or read it as its owner") from None
