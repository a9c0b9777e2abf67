"""Where a NIfTI file's voxel data ends, read from its header with the standard library only.

Used to catch truncated files (ITK reads them without error, the missing voxels become 0) in every
process, including Slicer's own, which bundles no NIfTI library besides ITK.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path


def nifti_data_end(path: Path) -> int | None:
    """Byte offset (in the uncompressed stream) where the voxel data ends; None if not NIfTI-1/2."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            header = fh.read(540)
    except (OSError, EOFError):
        return None
    for order in ("<", ">"):
        if len(header) >= 348 and struct.unpack(order + "i", header[:4])[0] == 348:
            dims = struct.unpack(order + "8h", header[40:56])
            bitpix = struct.unpack(order + "h", header[72:74])[0]
            offset = int(struct.unpack(order + "f", header[108:112])[0])
            return _end(dims, bitpix, offset)
        if len(header) >= 540 and struct.unpack(order + "i", header[:4])[0] == 540:
            bitpix = struct.unpack(order + "h", header[14:16])[0]
            dims = struct.unpack(order + "8q", header[16:80])
            offset = struct.unpack(order + "q", header[168:176])[0]
            return _end(dims, bitpix, offset)
    return None


def _end(dims: tuple[int, ...], bitpix: int, offset: int) -> int | None:
    ndim = dims[0]
    if not 1 <= ndim <= 7 or bitpix <= 0:
        return None
    voxels = 1
    for n in dims[1:ndim + 1]:
        voxels *= max(int(n), 1)
    return offset + voxels * bitpix // 8
