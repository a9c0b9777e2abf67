"""Training: exact continuation after a stop or a real SIGKILL, refusal to reuse a run folder blindly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from LNSynthLib.devices import THREADS_ENV
from LNSynthLib.diffusion.train.checkpoint import load_checkpoint
from LNSynthLib.diffusion.train.training import train
from LNSynthLib.errors import InputDataError, OutputExistsError

from .conftest import MICRO_STEPS, REFERENCE_THREADS, micro_cli_sets, micro_config

REPO = Path(__file__).resolve().parents[2]


def assert_same_run(a: Path, b: Path) -> None:
    pa, pb = load_checkpoint(a), load_checkpoint(b)
    assert pa["step"] == pb["step"] == MICRO_STEPS
    assert pa["loss_history"] == pb["loss_history"]
    for part in ("model", "ema"):
        for key, value in pa[part].items():
            assert torch.equal(value, pb[part][key]), f"{part}.{key} differs"


def test_stop_and_resume_is_identical(straight_run: Path, phantom_cases: Path, tmp_path: Path, one_thread: None) -> None:
    cfg = micro_config()
    first = train(cfg, phantom_cases, tmp_path, device="cpu", max_steps=1, progress=False)
    assert load_checkpoint(first)["step"] == 1
    final = train(cfg, phantom_cases, tmp_path, device="cpu", progress=False)
    assert_same_run(straight_run, final)


def test_resume_is_identical_with_the_paper_ema_cadence(straight_run: Path, phantom_cases: Path,
                                                        tmp_path: Path) -> None:
    """The paper's cadence (touch every N steps, raw weights before a start step) resumes exactly too:
    every 2 steps from step 2 makes the 4 steps copy (step 1), skip, blend (step 3), skip."""
    cfg = micro_config(**{"train.ema_every": 2, "train.ema_start": 2, "train.ema_warmup": False})
    straight = train(cfg, phantom_cases, tmp_path / "straight", device="cpu", progress=False)
    train(cfg, phantom_cases, tmp_path / "resumed", device="cpu", max_steps=3, progress=False)
    assert_same_run(straight, train(cfg, phantom_cases, tmp_path / "resumed", device="cpu", progress=False))
    tiny_cadence = load_checkpoint(straight_run)   # same run with tiny's every-step cadence
    ema = load_checkpoint(straight)["ema"]
    assert any(not torch.equal(ema[k], tiny_cadence["ema"][k]) for k in ema)   # the cadence changes the average


def test_sigkill_mid_run_then_resume_is_identical(straight_run: Path, phantom_cases: Path, tmp_path: Path,
                                                  one_thread: None) -> None:
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "LNSynthLib", "train", "--config", "tiny", "--cases", str(phantom_cases),
           "--run-dir", str(run_dir), "--device", "cpu", *micro_cli_sets()]
    # The killed part and the resumed part run on the reference run's thread count: float sums taken over
    # another number of threads differ in the last bits, and the comparison below is exact.
    env = {**os.environ, "LNSYNTH_PROGRESS": "json", THREADS_ENV: str(REFERENCE_THREADS)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not (run_dir / "checkpoint.pt").exists():
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    lines = [json.loads(line) for line in proc.stdout.read().splitlines() if line.startswith("{")]
    assert lines and lines[0]["stage"] == "train" and lines[0]["total"] == MICRO_STEPS   # progress for the runner
    killed_at = load_checkpoint(run_dir / "checkpoint.pt")["step"]
    assert 2 <= killed_at < MICRO_STEPS
    final = train(micro_config(), phantom_cases, run_dir, device="cpu", progress=False)
    assert_same_run(straight_run, final)
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_existing_run_is_not_silently_replaced(straight_run: Path, phantom_cases: Path) -> None:
    with pytest.raises(OutputExistsError):
        train(micro_config(), phantom_cases, straight_run.parent, device="cpu", resume=False, progress=False)
    other_model = micro_config(**{"network.channels": [8, 16, 16]})
    with pytest.raises(InputDataError, match="different model configuration"):
        train(other_model, phantom_cases, straight_run.parent, device="cpu", progress=False)
    # the run recorded its global batch; resuming with another one would change its data stream and recipe
    assert load_checkpoint(straight_run)["global_batch"] == 2
    with pytest.raises(InputDataError, match=r"trained with global batch 2 \(checkpoint\), this call would use 1"):
        train(micro_config(**{"train.batch_size": 1}), phantom_cases, straight_run.parent, device="cpu",
              progress=False)


def test_missing_cases_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="prepared cases"):
        train(micro_config(), tmp_path / "nowhere", tmp_path / "run", device="cpu", progress=False)
