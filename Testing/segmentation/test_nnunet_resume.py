"""nnU-Net training survives a stop: checkpoints are written atomically, resume skips one that does not load."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from LNSynthLib.safe_checkpoints import UnsafeCheckpointError, load_checkpoint
from LNSynthLib.segmentation.nnunet.project import NnUNetProject, TrainerSpec
from LNSynthLib.segmentation.nnunet.resume import atomic_save_checkpoint, resume_point


def _checkpoint(path, epoch: int) -> None:
    """The structure nnU-Net's `save_checkpoint` writes (weights, optimizer, log, epoch)."""
    torch.save({"network_weights": {"w": torch.ones(4)}, "optimizer_state": {}, "grad_scaler_state": None,
                "logging": {"train_losses": [0.5] * epoch}, "_best_ema": 0.1, "current_epoch": epoch,
                "init_args": {"fold": 0, "device": torch.device("cpu")}, "trainer_name": "nnUNetTrainer"}, path)


def test_truncated_latest_checkpoint_is_skipped_with_a_message(tmp_path, capsys):
    _checkpoint(tmp_path / "checkpoint_latest.pth", 5)
    _checkpoint(tmp_path / "checkpoint_best.pth", 3)
    latest = tmp_path / "checkpoint_latest.pth"
    latest.write_bytes(latest.read_bytes()[:100])          # cut off mid-write
    (tmp_path / ".checkpoint_latest.pth.tmp-123").write_bytes(b"partial")   # an interrupted atomic write
    assert resume_point(tmp_path) == (tmp_path / "checkpoint_best.pth", 3)
    err = capsys.readouterr().err
    assert f"lnsynth: warning: {latest} cannot be loaded" in err
    assert f"resuming nnU-Net training from {tmp_path / 'checkpoint_best.pth'} (epoch 3)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_best.pth", "checkpoint_latest.pth.unreadable"]


def test_no_loadable_checkpoint_starts_over_with_a_message(tmp_path, capsys):
    (tmp_path / "checkpoint_latest.pth").write_bytes(b"")  # the 0-byte file a SIGTERM used to leave
    assert resume_point(tmp_path) == (None, 0)
    assert "training starts over from epoch 0" in capsys.readouterr().err
    assert not (tmp_path / "checkpoint_latest.pth").exists()
    _checkpoint(tmp_path / "checkpoint_latest.pth", 2)
    assert resume_point(tmp_path) == (tmp_path / "checkpoint_latest.pth", 2)
    assert capsys.readouterr().err == ""                   # the normal case says nothing


def test_a_checkpoint_that_would_run_code_is_an_error_not_skipped(tmp_path):
    torch.save({"current_epoch": 1, "x": print}, tmp_path / "checkpoint_latest.pth")
    with pytest.raises(UnsafeCheckpointError):
        resume_point(tmp_path)


def test_interrupted_checkpoint_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "checkpoint_latest.pth"
    _checkpoint(target, 1)

    def dies_mid_write(self, filename: str) -> None:
        with open(filename, "wb") as fh:
            fh.write(b"\x50\x4b")
        raise KeyboardInterrupt   # stands in for the process being stopped

    with pytest.raises(KeyboardInterrupt):
        atomic_save_checkpoint(dies_mid_write)(None, str(target))
    assert load_checkpoint(target)["current_epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint_latest.pth"]

    atomic_save_checkpoint(lambda self, filename: _checkpoint(filename, 2))(None, str(target))
    assert load_checkpoint(target)["current_epoch"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint_latest.pth"]


@pytest.mark.slow
def test_sigterm_after_an_epoch_then_resume(nnunet_run, tmp_path):
    """`lnsynth nnunet train` stopped right after epoch 0's checkpoint resumes from it and finishes."""
    project = NnUNetProject(tmp_path / "project")
    for folder in ("nnUNet_raw", "nnUNet_preprocessed"):
        shutil.copytree(nnunet_run["project"].root / folder, project.root / folder)
    trainer = TrainerSpec(epochs=3, iterations=2, val_iterations=1)
    fold_dir = project.training_dir(901, trainer, configuration=nnunet_run["configuration"])
    cmd = [sys.executable, "-m", "LNSynthLib", "nnunet", "train", "--dataset", str(project.root), "--dataset-id",
           "901", "--epochs", "3", "--iterations", "2", "--val-iterations", "1", "--device", "cpu",
           "--skip-verify", "--patch-size", "16", "16", "16"]
    env = dict(os.environ, LNSYNTH_PROGRESS="json")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while not (fold_dir / "checkpoint_latest.pth").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)                      # right after the first epoch's checkpoint
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert not (fold_dir / "checkpoint_final.pth").exists()
    assert load_checkpoint(fold_dir / "checkpoint_latest.pth")["current_epoch"] == 1

    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    events = [json.loads(line) for line in resumed.stdout.splitlines() if line.startswith("{")]
    train_steps = [e["step"] for e in events if e.get("stage") == "nnunet_train"]
    assert train_steps[0] == 1 and train_steps[-1] == 3      # continued after epoch 0, not from scratch
    assert load_checkpoint(fold_dir / "checkpoint_final.pth")["current_epoch"] == 3
    assert not list(fold_dir.glob(".checkpoint_*"))
