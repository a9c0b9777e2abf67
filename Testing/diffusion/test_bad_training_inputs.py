"""Bad-input table for LN-DDPM training: settings that make a run look fine while it is not.

A learning rate that blows the run up must stop it with the project's error and leave no
non-finite checkpoint (before: a checkpoint with 530,768 NaN weights, then all-NaN samples); a
resumed run must train with its checkpoint's settings or be refused (before: `--set train.lr=0.5`
was written into config.yaml while the optimizer kept 0.001). Real training runs on the micro
config (16³ patches, a few seconds per step).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from LNSynthLib.errors import ConfigError, InputDataError

from .conftest import micro_config


@pytest.mark.parametrize("lr", [1e10, 1e30], ids=["lr-1e10", "lr-1e30"])
@pytest.mark.timeout(300)
def test_diverging_run_stops_without_a_non_finite_checkpoint(phantom_cases: Path, tmp_path: Path, one_thread,
                                                             lr: float):
    from LNSynthLib.diffusion.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
    from LNSynthLib.diffusion.train.training import train

    run = tmp_path / "run"
    config = micro_config(**{"train.lr": lr, "train.iterations": 8, "train.checkpoint_every": 1})
    with pytest.raises(ConfigError, match="training diverged") as caught:
        train(config, phantom_cases, run, device="cpu", progress=False)
    assert "train.lr" in str(caught.value)   # the fix names the setting to change
    if (run / CHECKPOINT_NAME).exists():      # what is kept is the last finite state, which loads
        payload = load_checkpoint(run / CHECKPOINT_NAME)
        assert all(torch.isfinite(t).all() for t in payload["ema"].values() if t.is_floating_point())
        assert payload["step"] < 8


def test_non_finite_weights_are_never_saved(tmp_path: Path):
    from LNSynthLib.diffusion.train.checkpoint import save_checkpoint

    weights = {"w": torch.ones(4), "b": torch.tensor([0.0, float("nan")])}
    with pytest.raises(ConfigError, match="1 NaN/infinite"):
        save_checkpoint(tmp_path / "checkpoint.pt", {"step": 5, "model": weights, "ema": weights})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("key", "value"), [("train.lr", 0.5), ("train.betas", [0.5, 0.9]),
                                            ("train.ema_decay", 0.9)], ids=["lr", "betas", "ema-decay"])
def test_resume_with_other_training_settings_is_refused(straight_run: Path, phantom_cases: Path, tmp_path: Path,
                                                        key: str, value: object):
    from LNSynthLib.diffusion.train.training import train

    run = tmp_path / "run"
    shutil.copytree(straight_run.parent, run)
    config_before = (run / "config.yaml").read_text()
    with pytest.raises(InputDataError, match=f"other settings .*{key}"):
        train(micro_config(**{key: value}), phantom_cases, run, device="cpu", progress=False)
    assert (run / "config.yaml").read_text() == config_before   # config.yaml still says what was trained


def test_resume_may_train_longer(straight_run: Path, phantom_cases: Path, tmp_path: Path):
    """How long, how often to log and save may change on resume (nothing trains here: max_steps is reached)."""
    from LNSynthLib.diffusion.train.checkpoint import load_checkpoint
    from LNSynthLib.diffusion.train.training import train

    run = tmp_path / "run"
    shutil.copytree(straight_run.parent, run)
    step = load_checkpoint(straight_run)["step"]
    config = micro_config(**{"train.iterations": 40, "train.log_every": 5, "train.checkpoint_every": 10})
    train(config, phantom_cases, run, device="cpu", progress=False, max_steps=step)
    assert "iterations: 40" in (run / "config.yaml").read_text()
