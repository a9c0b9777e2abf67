"""Write `.nii.gz` files with a fast gzip level, compressed on all cores.

SimpleITK's NIfTI writer ignores the requested compression level and compresses in one thread: on a
prepared 1 mm CT it was most of `lnsynth prepare`'s write time. Here SimpleITK writes the NIfTI
uncompressed (a header plus the raw voxels, a fraction of a second), and the bytes are deflated in
chunks in parallel, as `pigz` does: each chunk is an independent raw-deflate piece ended by a sync
flush, so the pieces join into ONE deflate stream inside a single-member gzip file with the usual
CRC-32 and size trailer. Every gzip reader (ITK, nibabel, Python's gzip, `zcat`) reads it, and the
trailer check of `write_check` holds. Only the first bytes of each chunk lose the previous chunk's
history, which costs well under 1 % of the size.

Hand-written rather than python-isal's `igzip_threaded` or zlib-ng, which do the same job: `write_volume`
also runs inside Slicer's own process (the panel writes the CT a job reads), where only what Slicer
bundles may be imported, and neither library is bundled; the standard library's zlib is, and releases the
GIL while it deflates, so threads give the parallel speed-up.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import SimpleITK as sitk

from LNSynthLib.atomic import temp_prefix

GZIP_LEVEL = 1            # zlib level: ~3x faster than the default 6 on CT data, ~2 % larger files
STORED_LEVEL = 0          # deflate's stored blocks: the voxels as they are, inside a valid gzip file
CHUNK_BYTES = 1 << 22     # 4 MiB per deflate piece
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"   # deflate, no name, mtime 0, unknown OS


def _deflate(chunk: bytes, last: bool, level: int) -> bytes:
    stream = zlib.compressobj(level, zlib.DEFLATED, -15)   # raw deflate: the gzip frame is written once
    return stream.compress(chunk) + stream.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def _gzip_pieces(chunks: Iterator[bytes], out: BinaryIO, level: int, workers: int | None) -> None:
    """Deflate `chunks` on `workers` threads (zlib frees the GIL) into one gzip member written to `out`.

    At most two pieces per worker are in flight, so memory stays a few chunks whatever the file size.
    """
    workers = workers or os.cpu_count() or 1
    crc, size = 0, 0
    out.write(_GZIP_HEADER)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[bytes]] = deque()
        chunk = next(chunks, b"")
        while True:
            following = next(chunks, None)
            crc, size = zlib.crc32(chunk, crc), size + len(chunk)
            pending.append(pool.submit(_deflate, chunk, following is None, level))
            if len(pending) >= 2 * workers:
                out.write(pending.popleft().result())
            if following is None:
                break
            chunk = following
        while pending:
            out.write(pending.popleft().result())
    out.write(struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))


def gzip_level(image: sitk.Image) -> int:
    """The level a `.nii.gz` of `image` is written with: `GZIP_LEVEL`, except a CT in a warm worker.

    The warm worker (`jobs/warm_worker.py`) runs the steps of an interactive synthesis, each of which
    waits for the files of the one before. There an intensity volume (any voxel type but uint8) is
    stored (`STORED_LEVEL`): level 1 deflates a 1 mm float32 CT of 219x156x219 voxels to 40 % in 1.3 s
    on a loaded 2-core machine and reads back in 0.7 s; stored, 0.1 s and 0.2 s at the raw size. Label
    maps (uint8) keep `GZIP_LEVEL`: they shrink 20x in a few milliseconds. Same voxels either way.
    """
    from LNSynthLib.jobs.warm_worker import WARM_ENV

    if os.environ.get(WARM_ENV) == "1" and image.GetPixelID() != sitk.sitkUInt8:
        return STORED_LEVEL
    return GZIP_LEVEL


def gzip_bytes(data: bytes, level: int = GZIP_LEVEL, workers: int | None = None) -> bytes:
    """`data` as one gzip member, deflated in `CHUNK_BYTES` pieces in parallel."""
    view = memoryview(data)
    out = io.BytesIO()
    _gzip_pieces((bytes(view[s:s + CHUNK_BYTES]) for s in range(0, len(view), CHUNK_BYTES)), out, level, workers)
    return out.getvalue()


def write_nifti_gz(image: sitk.Image, path: str | Path, level: int = GZIP_LEVEL, workers: int | None = None) -> None:
    """Write `image` to `path` (a `.nii.gz` name) through an uncompressed NIfTI next to it, read back in chunks."""
    path = Path(path)
    fd, raw_name = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".raw.nii", dir=path.parent)
    os.close(fd)
    raw = Path(raw_name)
    try:
        sitk.WriteImage(image, str(raw), False)
        with open(raw, "rb") as src, open(path, "wb") as dst:
            _gzip_pieces(iter(lambda: src.read(CHUNK_BYTES), b""), dst, level, workers)
    finally:
        raw.unlink(missing_ok=True)
