"""Check that a volume file just written is complete before it is renamed into place.

SimpleITK's NIfTI writer does not raise when the disk is full or a file-size limit is hit: it
prints `** ERROR: NWAD: wrote only 0 of ... bytes` and returns, leaving a truncated file. So the
temporary file is checked before `atomic_path` renames it: the header must read back with the
written size, and the data must all be there. For `.nii.gz` the gzip trailer holds the
uncompressed length (mod 2**32), so the check reads the header and the last 4 bytes only
(about a millisecond, also for a 512x512x300 CT); other formats are read back in full.
"""

from __future__ import annotations

from pathlib import Path

import SimpleITK as sitk

from LNSynthLib.atomic import NO_ROOM_FIX
from LNSynthLib.errors import OutputWriteError
from LNSynthLib.volumes.nifti_header import gzip_stored_size, nifti_data_end


def _fail(final: Path, problem: str) -> OutputWriteError:
    return OutputWriteError(f"could not be written completely ({problem}); nothing was kept", path=final,
                            fix=NO_ROOM_FIX)


def verify_written(tmp: Path, image: sitk.Image, final: Path) -> None:
    """Raise OutputWriteError (naming `final`) unless `tmp` holds all of `image`."""
    tmp = Path(tmp)
    if not tmp.exists() or tmp.stat().st_size == 0:
        raise _fail(final, "the file is empty")
    name = tmp.name.lower()
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(tmp))
    try:
        if not (name.endswith(".nii") or name.endswith(".nii.gz")):
            reader.Execute()   # other formats: read everything back
            return
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise _fail(final, f"it does not read back: {str(exc).strip().splitlines()[-1]}") from exc
    if tuple(reader.GetSize()) != tuple(image.GetSize()):
        raise _fail(final, f"it reads back as size {reader.GetSize()}, not {image.GetSize()}")
    needed = nifti_data_end(tmp)
    if needed is None:
        raise _fail(final, "its NIfTI header does not read back")
    if name.endswith(".gz"):
        if gzip_stored_size(tmp) != needed % 2**32:
            raise _fail(final, "the compressed data stops early")
    elif tmp.stat().st_size < needed:
        raise _fail(final, f"{tmp.stat().st_size} of {needed} bytes reached the disk")
