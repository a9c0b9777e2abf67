"""Files a browser uploads: a base name inside the session's upload folder, and a size limit.

The browser chooses the file name and the bytes, so neither is trusted: a name such as
`../../../x` or `/etc/cron.d/x` must not reach the file system as a path (trame-slicer's
`write_client_files_to_dir` joins it to the folder as given), and an upload beyond the
server's limit is refused before anything is written.
"""

from __future__ import annotations

from pathlib import Path

from LNSynthLib.cli.serve_command import DEFAULT_MAX_UPLOAD_MB
from LNSynthLib.errors import InputDataError

__all__ = ["DEFAULT_MAX_UPLOAD_MB", "discard_upload", "safe_upload_name", "upload_limit_text", "write_upload"]
MAX_NAME_BYTES = 200           # below every file system's 255-byte limit, with room for a `-N` suffix
MAX_UPLOAD_FILES = 1           # the page loads one CT per upload


def upload_limit_text(max_bytes: int) -> str:
    return f"{max_bytes / 2**20:.0f} MB"


def safe_upload_name(name: object) -> str:
    """The base name of a client's file name; refuses empty, `.`, `..` and control characters.

    Browsers send a base name; a path (either slash, as Windows clients may send) keeps only its
    last part, so nothing can be written outside the upload folder.
    """
    text = str(name if name is not None else "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if text in ("", ".", "..") or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InputDataError("the uploaded file has no usable name", fix="upload a CT file such as ct.nii.gz")
    if len(text.encode("utf-8", errors="replace")) > MAX_NAME_BYTES:
        raise InputDataError("the uploaded file's name is too long",
                             fix=f"rename the file to at most {MAX_NAME_BYTES} characters")
    return text


def _content(file: dict) -> bytes:
    content = file.get("content") if isinstance(file, dict) else None
    if isinstance(content, list):
        content = b"".join(bytes(part) for part in content)
    if not isinstance(content, (bytes, bytearray, memoryview)) or len(content) == 0:
        raise InputDataError("the uploaded file is empty", fix="upload a CT file (NIfTI, NRRD, ...)")
    return bytes(content)


def _free_path(folder: Path, name: str) -> Path:
    """`folder/name`, or `name-1`, `name-2`, ... before its suffixes when taken (earlier uploads stay)."""
    path = folder / name
    stem, dot, suffixes = name.partition(".")
    n = 1
    while path.exists():
        path = folder / f"{stem}-{n}{dot}{suffixes}"
        n += 1
    return path


def write_upload(files: list[dict] | None, folder: Path, max_bytes: int) -> Path:
    """Write the one uploaded file into `folder` (created here) under its base name; returns its path."""
    if not files:
        raise InputDataError("nothing was uploaded", fix="choose a CT file to upload")
    if len(files) > MAX_UPLOAD_FILES:
        raise InputDataError(f"{len(files)} files were uploaded at once", fix="upload one CT file")
    file = files[0] if isinstance(files[0], dict) else {}
    name = safe_upload_name(file.get("name"))
    content = _content(file)
    if len(content) > max_bytes:
        raise InputDataError(f"the upload is {len(content) / 2**20:.1f} MB, over this server's limit of "
                             f"{upload_limit_text(max_bytes)}",
                             fix="upload a smaller file, or ask the server's admin for a higher "
                                 "`lnsynth serve --max-upload-mb`")
    folder.mkdir(parents=True, exist_ok=True)
    path = _free_path(folder, name)
    if path.parent != folder:  # cannot happen for a base name; checked so that no change can reopen the hole
        raise InputDataError("the uploaded file has no usable name", fix="upload a CT file such as ct.nii.gz")
    with open(path, "xb") as out:  # never follows or replaces an existing file or link
        out.write(content)
    return path


def discard_upload(path: Path | None, folder: Path) -> None:
    """Remove a rejected upload, and the upload folder when that leaves it empty."""
    if path is not None:
        path.unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass
