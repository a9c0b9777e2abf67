"""`.nii.gz` written by the parallel fast gzip: one gzip member that every reader reads back exactly."""

from __future__ import annotations

import gzip
import zlib

import numpy as np
import SimpleITK as sitk

from LNSynthLib.volumes.fast_gzip import CHUNK_BYTES, gzip_bytes
from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.io import read_volume, write_volume
from LNSynthLib.volumes.nifti_header import gzip_stored_size, nifti_data_end


def test_chunked_gzip_is_one_member_that_zlib_and_gzip_read():
    data = np.random.default_rng(0).integers(-1000, 1500, 3 * CHUNK_BYTES // 2 + 7).astype(np.int16).tobytes()
    packed = gzip_bytes(data, workers=2)
    assert gzip.decompress(packed) == data
    stream = zlib.decompressobj(wbits=31)              # a single member: one stream reaches the end
    assert stream.decompress(packed) == data and stream.eof and stream.unused_data == b""
    assert gzip.decompress(gzip_bytes(b"")) == b""


def test_nifti_gz_reads_back_identically(tmp_path):
    rng = np.random.default_rng(1)
    ct = rng.normal(40, 300, (40, 190, 150)).astype(np.int16)   # > 2 chunks of noisy CT-like data
    geometry = Geometry((0.8, 0.7, 1.5), (-10.0, 20.0, 30.0), (1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0))
    path = write_volume(Volume(ct, geometry), tmp_path / "ct.nii.gz")
    back = read_volume(path)
    np.testing.assert_array_equal(back.array, ct)
    assert back.array.dtype == np.int16 and back.geometry.isclose(geometry)
    assert gzip_stored_size(path) == nifti_data_end(path) % 2**32   # the trailer check of write_check holds
    raw = gzip.decompress(path.read_bytes())
    header = sitk.ReadImage(str(path))
    assert len(raw) == nifti_data_end(path) and header.GetSize() == (150, 190, 40)
    import nibabel

    np.testing.assert_array_equal(np.asarray(nibabel.load(path).dataobj).transpose(2, 1, 0), ct)
    labels = (ct > 300).astype(np.uint8)
    np.testing.assert_array_equal(read_volume(write_volume(Volume(labels, geometry), tmp_path / "l.nii.gz")).array,
                                  labels)

