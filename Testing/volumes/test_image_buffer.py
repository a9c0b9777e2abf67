"""Arrays of volumes read with `volumes.io` share the SimpleITK image's buffer and keep it alive."""

from __future__ import annotations

import numpy as np

from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.io import read_volume, write_volume


def test_read_arrays_share_the_image_buffer_and_stay_valid(tmp_path):
    import gc

    ct = np.arange(24 * 30 * 20, dtype=np.int16).reshape(24, 30, 20)
    path = write_volume(Volume(ct, Geometry((1.0, 1.0, 2.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))),
                        tmp_path / "ct.nii.gz")
    array = read_volume(path).array[2:5]      # only a slice of the array outlives the Volume
    gc.collect()
    _ = [np.full(1 << 20, 9, np.int16) for _ in range(8)]   # reuse of freed memory would show in `array`
    np.testing.assert_array_equal(array, ct[2:5])
    assert array.flags.writeable
    array[0, 0, 0] = -5
    assert array[0, 0, 0] == -5
