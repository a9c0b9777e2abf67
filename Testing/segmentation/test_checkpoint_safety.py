"""nnU-Net checkpoints load weights-only: a crafted model folder runs no code, a genuine one still loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from LNSynthLib import safe_checkpoints
from LNSynthLib.errors import InputDataError
from LNSynthLib.volumes.io import write_volume


class _Payload:
    """Pickles as a call of os.system: unpickling it with weights_only=False runs the command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple:
        return (os.system, (self.command,))


def _malicious_model(root: Path, marker: Path) -> Path:
    model = root / "nnUNet_results" / "Dataset777_Shared" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    (model / "fold_0").mkdir(parents=True)
    (model / "plans.json").write_text(json.dumps({"dataset_name": "Dataset777_Shared", "configurations": {}}))
    (model / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "lymph_node": 1}}))
    torch.save({"network_weights": {}, "init_args": _Payload(f"touch {marker}")},
               model / "fold_0" / "checkpoint_final.pth")
    return model


def test_predict_refuses_a_checkpoint_that_would_run_code(tmp_path):
    marker = tmp_path / "payload_ran"
    model = _malicious_model(tmp_path / "download", marker)
    images = tmp_path / "images"
    from LNSynthLib.phantom import generate_phantom

    write_volume(generate_phantom(seed=0, shape_zyx=(16, 24, 24), spacing_xyz=(2.0, 2.0, 2.0)).ct,
                 images / "a_0000.nii.gz")  # passes the CT checks (a body 48 mm across)
    proc = subprocess.run([sys.executable, "-m", "LNSynthLib", "nnunet", "predict", "--model", str(model),
                           "--input", str(images), "--out", str(tmp_path / "pred"), "--device", "cpu"],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, LNSYNTH_PROGRESS="quiet"))
    assert proc.returncode == 2, proc.stderr[-3000:]
    checkpoint = model / "fold_0" / "checkpoint_final.pth"
    assert f"lnsynth: error: {checkpoint}: checkpoint refused" in proc.stderr
    assert "Fix:" in proc.stderr and "Traceback" not in proc.stderr
    assert "posix.system" in proc.stderr or "os.system" in proc.stderr     # names what it wanted to call
    assert not marker.exists()
    assert not list((tmp_path / "pred").glob("*.nii.gz"))


def test_in_process_loading_is_weights_only_only_inside_the_block(tmp_path):
    """TotalSegmentator runs nnU-Net in LNSynth's process: the guard is scoped, torch.load is restored."""
    marker = tmp_path / "payload_ran"
    path = tmp_path / "evil.pth"
    torch.save({"x": _Payload(f"touch {marker}")}, path)
    original = torch.load
    with safe_checkpoints.weights_only_loading():
        with pytest.raises(safe_checkpoints.UnsafeCheckpointError) as info:
            torch.load(path, map_location="cpu", weights_only=False)   # nnU-Net's call, forced weights-only
    assert info.value.path == path and info.value.fix
    assert torch.load is original and not marker.exists()


def test_genuine_nnunet_checkpoint_loads_weights_only(nnunet_run):
    """The trained fixture's checkpoints need only the allow-listed globals."""
    for name in ("checkpoint_final.pth", "checkpoint_best.pth"):
        payload = safe_checkpoints.load_checkpoint(nnunet_run["checkpoint"].with_name(name))
        assert payload["trainer_name"].startswith("nnUNetTrainerLNSynth_")
        assert payload["network_weights"] and isinstance(payload["logging"], dict)


def test_totalsegmentator_weights_folder_cannot_run_code(tmp_path, example_ct):
    """TotalSegmentator loads nnU-Net checkpoints from a user-given weights folder, in LNSynth's process."""
    from LNSynthLib.anatomy.totalseg import required_datasets, run_totalsegmentator

    marker = tmp_path / "payload_ran"
    home = tmp_path / "ts_home"
    (_, folder, _), = required_datasets(fast=True)
    model = home / "nnunet" / "results" / folder / "nnUNetTrainer_4000epochs_NoMirroring__nnUNetPlans__3d_fullres"
    (model / "fold_0").mkdir(parents=True)
    (model / "plans.json").write_text(json.dumps({"dataset_name": folder, "configurations": {}}))
    (model / "dataset.json").write_text(json.dumps({"labels": {"background": 0}}))
    torch.save({"network_weights": {}, "init_args": _Payload(f"touch {marker}")},
               model / "fold_0" / "checkpoint_final.pth")
    out = tmp_path / "total.nii.gz"
    original = torch.load
    with pytest.raises(safe_checkpoints.UnsafeCheckpointError) as info:
        run_totalsegmentator(example_ct, out, device="cpu", weights_dir=home)
    assert info.value.path == model / "fold_0" / "checkpoint_final.pth"
    assert not marker.exists() and not out.exists() and torch.load is original


def test_a_damaged_file_is_named_as_no_checkpoint(tmp_path):
    """Not a zip archive (what torch.save writes): a damaged file, told apart from a refused one."""
    path = tmp_path / "checkpoint_final.pth"
    path.write_bytes(b"not a checkpoint")
    with safe_checkpoints.weights_only_loading():
        with pytest.raises(InputDataError) as info:
            torch.load(path, map_location="cpu", weights_only=False)
    assert not isinstance(info.value, safe_checkpoints.UnsafeCheckpointError)
    assert "is not a PyTorch checkpoint" in info.value.problem and info.value.path == path
