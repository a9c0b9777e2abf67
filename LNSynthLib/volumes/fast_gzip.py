"""Write `.nii.gz` files with a fast gzip level, compressed on all cores.

SimpleITK's NIfTI writer ignores the requested compression level and compresses in one thread: on a
prepared 1 mm CT it was most of `lnsynth prepare`'s write time. Here SimpleITK writes the NIfTI
uncompressed (a header plus the raw voxels, a fraction of a second), and the bytes are deflated in
chunks in parallel, as `pigz` does: each chunk is an independent raw-deflate piece ended by a sync
flush, so the pieces join into ONE deflate stream inside a single-member gzip file with the usual
CRC-32 and size trailer. Every gzip reader (ITK, nibabel, Python's gzip, `zcat`) reads it, and the
trailer check of `write_check` holds. Only the first bytes of each chunk lose the previous chunk's
history, which costs well under 1 % of the size.
"""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import SimpleITK as sitk

GZIP_LEVEL = 1            # zlib level: ~3x faster than the default 6 on CT data, ~2 % larger files
CHUNK_BYTES = 1 << 22     # 4 MiB per deflate piece
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"   # deflate, no name, mtime 0, unknown OS


def _deflate(chunk: memoryview, last: bool, level: int) -> bytes:
    stream = zlib.compressobj(level, zlib.DEFLATED, -15)   # raw deflate: the gzip frame is written once
    return stream.compress(chunk) + stream.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def gzip_bytes(data: bytes, level: int = GZIP_LEVEL, workers: int | None = None) -> bytes:
    """`data` as one gzip member, deflated in `CHUNK_BYTES` pieces on `workers` threads (zlib frees the GIL)."""
    view = memoryview(data)
    starts = list(range(0, len(view), CHUNK_BYTES)) or [0]
    workers = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        crc = pool.submit(zlib.crc32, view)
        pieces = list(pool.map(lambda s: _deflate(view[s:s + CHUNK_BYTES], s == starts[-1], level), starts))
        trailer = struct.pack("<II", crc.result() & 0xFFFFFFFF, len(view) & 0xFFFFFFFF)
    return b"".join([_GZIP_HEADER, *pieces, trailer])


def write_nifti_gz(image: sitk.Image, path: str | Path, level: int = GZIP_LEVEL) -> None:
    """Write `image` to `path` (a `.nii.gz` name) through an uncompressed NIfTI next to it."""
    path = Path(path)
    fd, raw_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".raw.nii", dir=path.parent)
    os.close(fd)
    raw = Path(raw_name)
    try:
        sitk.WriteImage(image, str(raw), False)
        data = raw.read_bytes()
    finally:
        raw.unlink(missing_ok=True)
    compressed = gzip_bytes(data, level)
    del data
    with open(path, "wb") as fh:
        fh.write(compressed)
