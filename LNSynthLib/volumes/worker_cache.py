"""Volumes a warm worker wrote, kept for its next steps to read without decompressing the file again.

An interactive synthesis is a chain of steps run one after another by the session's warm worker
(`jobs/warm_worker.py`): `prepare` writes the case that `sample` reads, `sample` writes the samples that
the in-CT step reads. In that process, and only there, every volume written is kept (the newest, up to
`KEPT_BYTES` or a quarter of the memory left), and a read of a file that is still the one written gives a
copy of the kept voxels. "Still the one written": the same device, inode, size and modification time (a
rename keeps them, any other write changes them) and the same gzip trailer, the CRC-32 of the uncompressed
bytes (in case a coarse file clock let a new file take a deleted one's inode within the same tick). Only
`.nii.gz` files are kept: the case files, the large ones.

A kept volume is what reading its file gives: the geometry is the one the file's header reads back as
(NIfTI holds it in float32), and a volume is kept only when its voxel type reads back unchanged and, for
float voxels, every voxel is finite (a reader turns NaN into 0 or refuses the file).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from LNSynthLib.volumes.geometry import Geometry, Volume

KEPT_BYTES = 512 * 1024**2   # a prepared 1 mm case and its samples, a few times over ...
KEPT_SHARE = 4               # ... and never more than a quarter of the memory this process can still have

_kept: OrderedDict[tuple[int, int, int, int, bytes], Volume] = OrderedDict()


def active() -> bool:
    """Whether this process is a warm worker (the only one that keeps what it wrote)."""
    from LNSynthLib.jobs.warm_worker import WARM_ENV

    return os.environ.get(WARM_ENV) == "1"


def _identity(path: Path) -> tuple[int, int, int, int, bytes] | None:
    """The file as it is now: device, inode, size, modification time and gzip trailer (None: not kept here)."""
    if not path.name.lower().endswith(".nii.gz"):
        return None
    try:
        with open(path, "rb") as fh:
            stat = os.fstat(fh.fileno())
            if stat.st_size < 18:   # shorter than a gzip header and trailer
                return None
            fh.seek(-8, os.SEEK_END)
            trailer = fh.read(8)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, trailer


def _limit() -> int:
    from LNSynthLib.volumes.memory import available_memory

    available = available_memory()
    return KEPT_BYTES if available is None else min(KEPT_BYTES, available // KEPT_SHARE)


def keep(path: str | Path, volume: Volume) -> None:
    """Remember `volume` as the content of `path`, just written from it and renamed into place."""
    if not active() or volume.array.ndim != 3:
        return
    limit = _limit()
    if volume.array.nbytes > limit:
        return
    array = volume.array
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        return
    identity = _identity(Path(path))
    if identity is None:
        return
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
        written = sitk.GetImageFromArray(np.ascontiguousarray(array[:1, :1, :1])).GetPixelID()
    except RuntimeError:
        return
    if (reader.GetPixelID() != written or reader.GetNumberOfComponents() != 1
            or tuple(reader.GetSize()) != tuple(array.shape[::-1])):
        return
    copy = np.array(array, copy=True, order="C")
    copy.flags.writeable = False
    _kept.pop(identity, None)
    _kept[identity] = Volume(copy, Geometry(reader.GetSpacing(), reader.GetOrigin(), reader.GetDirection()))
    total = sum(v.array.nbytes for v in _kept.values())
    while total > limit:
        total -= _kept.popitem(last=False)[1].array.nbytes


def recall(path: str | Path) -> Volume | None:
    """A writable copy of the volume kept for `path`, or None (not written here, or changed since)."""
    if not _kept or not active():
        return None
    identity = _identity(Path(path))
    volume = _kept.get(identity) if identity is not None else None
    if volume is None:
        return None
    _kept.move_to_end(identity)
    return Volume(volume.array.copy(), volume.geometry)


def clear() -> None:
    _kept.clear()
