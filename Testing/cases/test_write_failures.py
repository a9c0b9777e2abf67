"""A write that fails (disk full, file-size limit) is never renamed into place and ends in the project's error.

SimpleITK's NIfTI writer reports such a failure only on stderr; `ulimit -f` (RLIMIT_FSIZE) reproduces
it without filling a disk. SIGXFSZ is ignored in the child so the write fails instead of killing it.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import SimpleITK as sitk

from LNSynthLib.errors import OutputWriteError
from LNSynthLib.phantom.generate import generate_phantom
from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.io import to_sitk, write_volume
from LNSynthLib.volumes.write_check import verify_written

FILE_LIMIT_BYTES = 16 * 1024   # smaller than any prepared CT, larger than nothing Python needs to write


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT_BYTES, FILE_LIMIT_BYTES))


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_prepare_under_a_file_size_limit_exits_2_and_keeps_nothing(tmp_path):
    p = generate_phantom(seed=4, shape_zyx=(40, 64, 64), spacing_xyz=(1.5, 1.5, 2.0), n_nodes=3)
    ct, ln = write_volume(p.ct, tmp_path / "ct.nii.gz"), write_volume(p.ln, tmp_path / "ln.nii.gz")
    out = tmp_path / "prepared"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-m", "LNSynthLib", "prepare", "--ct", str(ct), "--ln", str(ln),
                           "--anatomy-source", "coarse", "--out", str(out), "--case-id", "c1"],
                          capture_output=True, text=True, timeout=300, preexec_fn=_limit_file_size,
                          env=dict(os.environ, LNSYNTH_PROGRESS="quiet", PYTHONDONTWRITEBYTECODE="1"))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"lnsynth: error: {out / 'c1' / 'ct.nii.gz'}: could not be written completely" in proc.stderr
    assert "Fix: free disk space" in proc.stderr and "Traceback" not in proc.stderr
    assert _files(out) == []      # no ct.nii.gz, no temporary file


def test_text_write_out_of_room_is_the_projects_error(tmp_path):
    """Python raises EFBIG/ENOSPC for JSON/CSV writes: same error, no temporary file left."""
    code = ("import sys; from LNSynthLib.atomic import write_text_atomic; from LNSynthLib.errors import "
            "LNSynthError\ntry:\n    write_text_atomic(sys.argv[1], 'x' * 100000)\nexcept LNSynthError as e:\n"
            "    print(type(e).__name__, e); sys.exit(2)")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "big.json")], capture_output=True,
                          text=True, timeout=120, preexec_fn=_limit_file_size,
                          env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    assert proc.returncode == 2 and proc.stdout.startswith(f"OutputWriteError {tmp_path / 'big.json'}: could not")
    assert _files(tmp_path) == []


def test_checkpoint_write_out_of_room_keeps_the_previous_one(tmp_path):
    """torch.save reports a full disk as a RuntimeError ('unexpected pos'): the project's error instead."""
    import torch

    from LNSynthLib.diffusion.train.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path / "checkpoint.pt", {"step": 1})
    code = ("import sys, torch; from LNSynthLib.diffusion.train.checkpoint import save_checkpoint; from LNSynthLib.errors "
            "import LNSynthError\ntry:\n    save_checkpoint(sys.argv[1], {'step': 2, 'w': torch.zeros(100000)})\n"
            "except LNSynthError as e:\n    print(type(e).__name__, e); sys.exit(2)")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                          preexec_fn=_limit_file_size, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"OutputWriteError {path}: could not be written completely (torch:")
    # read raw: `load_checkpoint` would refuse this stub, which holds no model (see checkpoint_checks)
    assert torch.load(path, weights_only=True)["step"] == 1 and _files(tmp_path) == ["checkpoint.pt"]


def test_truncated_nifti_is_caught_before_the_rename(tmp_path):
    image = to_sitk(Volume(np.random.default_rng(0).normal(size=(20, 30, 40)).astype(np.float32),
                           Geometry((1.0, 1.0, 1.0))))
    for name in ("a.nii.gz", "a.nii"):
        path = tmp_path / name
        sitk.WriteImage(image, str(path), name.endswith(".gz"))
        verify_written(path, image, path)    # complete: passes
        path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
        with pytest.raises(OutputWriteError, match="could not be written completely"):
            verify_written(path, image, path)


@pytest.mark.slow
def test_check_cost_on_a_full_size_ct(tmp_path):
    """The check reads the header and the gzip trailer only: well under 1 % of the write time for 512²x300."""
    rng = np.random.default_rng(0)
    image = to_sitk(Volume(rng.normal(0, 100, (300, 512, 512)).astype(np.float32), Geometry((0.8, 0.8, 1.0))))
    path = tmp_path / "ct.nii.gz"
    t0 = time.perf_counter()
    sitk.WriteImage(image, str(path), True)
    t1 = time.perf_counter()
    verify_written(path, image, path)
    t2 = time.perf_counter()
    assert t2 - t1 < 0.05 * (t1 - t0), (t1 - t0, t2 - t1)
