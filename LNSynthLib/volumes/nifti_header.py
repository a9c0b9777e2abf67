"""Where a NIfTI file's voxel data ends, read from its header with the standard library only.

Used to catch truncated files (ITK reads them without error, the missing voxels become 0) in every
process, including Slicer's own, which bundles no NIfTI library besides ITK.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FLOAT_TYPES = {16: "f4", 64: "f8"}  # NIfTI datatype codes of float32 / float64


@dataclass(frozen=True)
class NiftiLayout:
    """Where and how the voxels are stored (in the uncompressed stream)."""

    byte_order: str
    datatype: int
    bitpix: int
    voxels: int
    offset: int

    @property
    def data_end(self) -> int:
        return self.offset + self.voxels * self.bitpix // 8


def nifti_layout(path: Path) -> NiftiLayout | None:
    """The header's data layout of a NIfTI-1/2 file (`.nii` or `.nii.gz`); None if it is not one."""
    header = _header_bytes(path)
    for order in ("<", ">"):
        if len(header) >= 348 and struct.unpack(order + "i", header[:4])[0] == 348:
            datatype, bitpix = struct.unpack(order + "2h", header[70:74])
            dims = struct.unpack(order + "8h", header[40:56])
            offset = int(struct.unpack(order + "f", header[108:112])[0])
            return _layout(order, datatype, bitpix, dims, offset)
        if len(header) >= 540 and struct.unpack(order + "i", header[:4])[0] == 540:
            datatype, bitpix = struct.unpack(order + "2h", header[12:16])
            dims = struct.unpack(order + "8q", header[16:80])
            offset = struct.unpack(order + "q", header[168:176])[0]
            return _layout(order, datatype, bitpix, dims, offset)
    return None


def _header_bytes(path: Path) -> bytes:
    """Up to the first 540 bytes of the (uncompressed) file; fewer when the file ends or breaks off first."""
    opener = gzip.open if is_gzip(path) else open
    out = b""
    try:
        with opener(path, "rb") as fh:
            while len(out) < 540:
                chunk = fh.read(540 - len(out))
                if not chunk:
                    break
                out += chunk
    except (OSError, EOFError):
        pass
    return out


def is_gzip(path: Path) -> bool:
    """Whether the file is gzip-compressed, by its first bytes: a plain `.nii` may be named `.nii.gz`
    (ITK reads either), so the name does not say how to read it."""
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == b"\x1f\x8b"
    except OSError:
        return False


def gzip_stored_size(path: Path) -> int:
    """The uncompressed length a complete single-member gzip file records in its trailer (mod 2**32)."""
    with open(path, "rb") as fh:
        fh.seek(-4, 2)
        return int.from_bytes(fh.read(4), "little")


def header_cut_off(path: Path) -> bool:
    """True when the file ends inside the 348-byte NIfTI-1 header (a file cut off while copying)."""
    return len(_header_bytes(path)) < 348


def _layout(order: str, datatype: int, bitpix: int, dims: tuple[int, ...], offset: int) -> NiftiLayout | None:
    ndim = dims[0]
    if not 1 <= ndim <= 7 or bitpix <= 0:
        return None
    voxels = 1
    for n in dims[1:ndim + 1]:
        voxels *= max(int(n), 1)
    return NiftiLayout(order, int(datatype), int(bitpix), voxels, int(offset))


def nifti_data_end(path: Path) -> int | None:
    """Byte offset (in the uncompressed stream) where the voxel data ends; None if not NIfTI-1/2."""
    layout = nifti_layout(path)
    return None if layout is None else layout.data_end


def nifti_float_values(path: Path) -> np.ndarray | None:
    """The stored voxel values of a float NIfTI file (flat, as written); None for other files.

    ITK turns NaN and inf into 0 when it reads NIfTI, so checks for them need the file's own values.
    """
    layout = nifti_layout(path)
    if layout is None or layout.datatype not in FLOAT_TYPES:
        return None
    opener = gzip.open if is_gzip(path) else open
    with opener(path, "rb") as fh:
        fh.seek(layout.offset)
        raw = fh.read(layout.data_end - layout.offset)
    dtype = np.dtype(layout.byte_order + FLOAT_TYPES[layout.datatype])
    return np.frombuffer(raw[:len(raw) - len(raw) % dtype.itemsize], dtype=dtype)
