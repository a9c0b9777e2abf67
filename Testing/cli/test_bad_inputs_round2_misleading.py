"""Bad-input table, round 2, class 8 (clean but misleading before): a plain `.nii` named `.nii.gz` is read
(and called truncated only when it is), an unreadable file is not called missing, `1e-4` in YAML is a number.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .round2_inputs import lnsynth_env, plain_nii, prepare_ct, rows

TABLE = [
    ("ct-plain-nii-named-gz-truncated", prepare_ct("{t}/plain.nii.gz"), ["plain.nii.gz"], "truncated",
     lambda tmp, data: plain_nii(data, tmp / "plain.nii.gz", keep=0.6)),
]


@pytest.mark.parametrize(("args", "names", "why", "setup"), rows(TABLE))
@pytest.mark.timeout(60)
def test_bad_input_is_refused(refused, bad_data: Path, tmp_path: Path, args, names, why, setup):
    setup(tmp_path, bad_data)
    refused(args, names, why)


def test_plain_nii_named_nii_gz_is_read(bad_data: Path, tmp_path: Path, capsys):
    """ITK reads an uncompressed NIfTI whatever its name; it was refused as "truncated"."""
    from LNSynthLib.cli.main import main

    plain_nii(bad_data, tmp_path / "ct_plain.nii.gz")
    args = [a.format(d=bad_data, t=tmp_path) for a in prepare_ct("{t}/ct_plain.nii.gz")]
    assert main(args) == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "c1" / "case.json").is_file()


def _without_file_permission_override() -> None:
    """preexec_fn: as root, give up the capabilities that read any file (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH),
    so file permissions apply to the command as they do to a user."""
    if os.geteuid() != 0:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):   # PR_CAPBSET_DROP: gone from the bounding set, so from the exec'd program too
        if libc.prctl(24, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_unreadable_file_is_not_called_missing(bad_data: Path, tmp_path: Path):
    """A CT without read permission: "cannot be read (Permission denied)", not ITK's "file doesn't exist"."""
    ct, ln = tmp_path / "ct.nii.gz", tmp_path / "ln.nii.gz"
    shutil.copy(bad_data / "ct.nii.gz", ct)
    shutil.copy(bad_data / "ln.nii.gz", ln)
    ct.chmod(0o000)
    res = subprocess.run([sys.executable, "-m", "LNSynthLib", "prepare", "--ct", str(ct), "--ln", str(ln),
                          "--out", str(tmp_path / "out"), "--case-id", "c1", "--anatomy-source", "coarse"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path, env=lnsynth_env(),
                         preexec_fn=_without_file_permission_override)
    ct.chmod(0o644)
    assert res.returncode == 2, res.stderr
    assert "cannot be read (Permission denied)" in res.stderr and "Fix:" in res.stderr, res.stderr
    assert "not found" not in res.stderr and "t exist" not in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists()


def test_yaml_exponent_without_a_dot_is_a_number(tmp_path: Path):
    """YAML 1.1 reads `1e-4` as a string: config files, --set values and a checkpoint's config accept it."""
    from LNSynthLib.cli.train_command import parse_overrides
    from LNSynthLib.diffusion.config import load_config, read_yaml

    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ntrain:\n  lr: 1e-4\n  betas: [0.9, 999e-3]\n  ema_decay: 9.95E-1\n")
    config = load_config(path)
    assert (config.train.lr, config.train.betas, config.train.ema_decay) == (1e-4, (0.9, 0.999), 0.995)
    assert load_config("tiny", parse_overrides(["train.lr=2e-5"])).train.lr == 2e-5
    assert read_yaml("a: '1e-4'\nb: e5\nc: 1_000\n") == {"a": "1e-4", "b": "e5", "c": 1000}   # strings stay strings
