"""Checkpoints: weights-only loading, complete resumable state, clear errors for bad files."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from LNSynthLib.diffusion.train.checkpoint import (
    FORMAT,
    capture_global_rng,
    config_of,
    load_checkpoint,
    restore_global_rng,
    save_checkpoint,
)
from LNSynthLib.errors import InputDataError


def test_global_rng_round_trip() -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    state = capture_global_rng()
    first = (random.random(), np.random.rand(), float(torch.rand(1)))
    restore_global_rng(state)
    assert (random.random(), np.random.rand(), float(torch.rand(1))) == first


def test_save_load_weights_only(tmp_path: Path) -> None:
    gen = np.random.default_rng(7)
    gen.random(5)
    payload = {"step": 3, "rng": capture_global_rng(), "data_rng": gen.bit_generator.state,
               "weights": {"w": torch.arange(4.0)}}
    path = save_checkpoint(tmp_path / "checkpoint.pt", payload)
    assert not list(tmp_path.glob(".*tmp*")), "temporary file left behind"
    loaded = torch.load(path, weights_only=True)       # plain weights-only load works
    assert loaded["format"] == FORMAT
    back = torch.load(path, weights_only=True)   # `load_checkpoint` refuses a stub without model and config
    restored = np.random.default_rng()
    restored.bit_generator.state = back["data_rng"]
    assert restored.random() == gen.random()
    assert torch.equal(back["weights"]["w"], torch.arange(4.0))


def test_run_checkpoint_holds_complete_state(straight_run: Path) -> None:
    payload = torch.load(straight_run, weights_only=True)
    for key in ("model", "ema", "optimizer", "step", "config_yaml", "rng", "data_rng", "noise_rng", "loss_history"):
        assert key in payload, key
    assert payload["step"] == 4 and len(payload["loss_history"]) == 4
    assert {"python", "numpy", "torch"} <= set(payload["rng"])
    assert config_of(payload).train.patch_size == (16, 16, 16)
    run_dir = straight_run.parent
    assert (run_dir / "loss.csv").read_text(encoding="utf-8").splitlines()[0] == "step,loss"
    assert len((run_dir / "loss.csv").read_text(encoding="utf-8").splitlines()) == 5
    assert (run_dir / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert (run_dir / "config.yaml").exists()


def test_damaged_or_foreign_files_are_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint at all")
    with pytest.raises(InputDataError, match="broken.pt"):
        load_checkpoint(broken)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(InputDataError, match="not an LNSynth"):
        load_checkpoint(foreign)
    with pytest.raises(InputDataError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_code_carrying_pickle_is_not_executed(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return (Path(tmp_path / "pwned").touch, ())

    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "x": Evil()}, path)
    with pytest.raises(InputDataError):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()
