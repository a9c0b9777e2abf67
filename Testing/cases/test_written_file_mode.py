"""Files written atomically get the mode a plain open() would give (0666 minus the umask), not the
temporary file's private 0600: prepared cases, datasets and results on a shared server stay readable."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from LNSynthLib.atomic import write_text_atomic
from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.io import write_volume


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_follow_the_umask(tmp_path, umask: int) -> None:
    old = os.umask(umask)
    try:
        text = write_text_atomic(tmp_path / "result.md", "# result\n")
        image = write_volume(Volume(np.zeros((4, 4, 4), np.int16), Geometry((1.0, 1.0, 1.0), (0.0, 0.0, 0.0))),
                             tmp_path / "ct.nii.gz")
    finally:
        os.umask(old)
    for path in (text, image):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask, path
