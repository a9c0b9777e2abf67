"""The warm worker of an interactive session: one process serves request after request, keeps its model
until the checkpoint file changes, survives a cancel, is replaced after a kill, and is one per session."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from LNSynthLib.diffusion.sample.provenance import file_sha256
from LNSynthLib.jobs.chain import JobChain, Step
from LNSynthLib.jobs.warm_client import WarmWorker

from .conftest import micro_cli_sets

WORKER_ENV = {"OMP_NUM_THREADS": "1"}


def _sample_args(checkpoint: Path, cases: Path, out: Path) -> list[str]:
    return ["sample", "--checkpoint", str(checkpoint), "--cases", str(cases), "--out", str(out),
            "--samples-per-case", "1", "--sampler", "dpmpp", "--steps", "2", "--device", "cpu"]


def _first_sample_meta(out: Path) -> dict:
    folder = sorted(p for p in out.iterdir() if "_synt_" in p.name)[0]
    return json.loads((folder / "case.json").read_text(encoding="utf-8"))


def _long_training(worker: WarmWorker, cases: Path, run_dir: Path):
    request = worker.submit(["train", "--config", "tiny", "--cases", str(cases), "--run-dir", str(run_dir),
                             "--device", "cpu", *micro_cli_sets(), "--set", "train.iterations=100000"])
    deadline = time.monotonic() + 300
    while request.poll().running and request.state.step < 1:   # training has begun
        assert time.monotonic() < deadline, request.state.log_tail[-10:]
        time.sleep(0.1)
    assert request.state.running, request.state.log_tail[-10:]
    return request


@pytest.fixture()
def worker():
    w = WarmWorker(env=WORKER_ENV)
    yield w
    w.stop()


def test_one_worker_serves_every_request_and_reloads_a_changed_checkpoint(worker, straight_run, phantom_cases,
                                                                          tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes(straight_run.read_bytes())
    first = worker.submit(_sample_args(checkpoint, phantom_cases, tmp_path / "a")).wait(600)
    pid = worker.pid
    second = worker.submit(_sample_args(checkpoint, phantom_cases, tmp_path / "b")).wait(600)
    assert (first.returncode, second.returncode) == (0, 0), second.log_tail[-10:]
    assert worker.pid == pid and worker.starts == 1                     # the same process, imports done once
    assert _first_sample_meta(tmp_path / "b")["checkpoint_sha256"] == file_sha256(checkpoint)
    # A training saves again: the worker must sample from the new weights, not the ones it holds.
    payload = torch.load(checkpoint, weights_only=True)
    payload["ema"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in payload["ema"].items()}
    torch.save(payload, checkpoint)
    third = worker.submit(_sample_args(checkpoint, phantom_cases, tmp_path / "c")).wait(600)
    assert third.returncode == 0 and worker.pid == pid
    meta_b, meta_c = _first_sample_meta(tmp_path / "b"), _first_sample_meta(tmp_path / "c")
    assert meta_c["checkpoint_sha256"] == file_sha256(checkpoint) != meta_b["checkpoint_sha256"]


def test_loaded_model_is_kept_until_the_file_changes(straight_run, tmp_path, monkeypatch):
    from LNSynthLib.diffusion.sample.sampling import load_model
    from LNSynthLib.jobs.warm_worker import WARM_ENV

    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes(straight_run.read_bytes())
    cpu = torch.device("cpu")
    assert load_model(checkpoint, cpu)[0] is not load_model(checkpoint, cpu)[0]   # a one-shot job: no cache
    monkeypatch.setenv(WARM_ENV, "1")
    model = load_model(checkpoint, cpu)[0]
    assert load_model(checkpoint, cpu)[0] is model
    stat = checkpoint.stat()
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert load_model(checkpoint, cpu)[0] is not model


def test_cancel_stops_the_request_and_keeps_the_worker(worker, straight_run, phantom_cases, tmp_path):
    request = _long_training(worker, phantom_cases, tmp_path / "run")
    pid = worker.pid
    request.cancel(grace_s=60)
    assert not request.state.running and request.state.cancelled and request.state.returncode == 130
    assert worker.pid == pid
    after = worker.submit(_sample_args(straight_run, phantom_cases, tmp_path / "out")).wait(600)
    assert after.returncode == 0 and worker.pid == pid and worker.starts == 1


def test_a_killed_worker_fails_its_request_clearly_and_is_replaced(worker, straight_run, phantom_cases, tmp_path):
    request = _long_training(worker, phantom_cases, tmp_path / "run")
    os.kill(worker.pid, signal.SIGKILL)
    state = request.wait(60)
    assert state.returncode == -signal.SIGKILL
    assert "synthesis worker process was killed by SIGKILL" in state.log_tail[-1]
    after = worker.submit(_sample_args(straight_run, phantom_cases, tmp_path / "out")).wait(600)
    assert after.returncode == 0 and worker.starts == 2


def test_two_sessions_have_two_workers_and_a_chain_runs_its_warm_steps_in_one(straight_run, phantom_cases,
                                                                             tmp_path):
    sessions = [WarmWorker(env=WORKER_ENV), WarmWorker(env=WORKER_ENV)]
    try:
        chains = [JobChain([Step("Sampling", _sample_args(straight_run, phantom_cases, tmp_path / f"run{i}" / "out"),
                                 warm=True),
                            Step("Sampling again", _sample_args(straight_run, phantom_cases,
                                                                tmp_path / f"run{i}" / "again"), warm=True)],
                          tmp_path / f"run{i}", worker=w) for i, w in enumerate(sessions)]
        states = [c.wait(timeout_s=600) for c in chains]
        assert all(s.succeeded for s in states), [s.error for s in states]
        assert sessions[0].pid != sessions[1].pid and [w.starts for w in sessions] == [1, 1]
        assert all((tmp_path / f"run{i}" / "again").is_dir() for i in range(2))
    finally:
        for w in sessions:
            w.stop()
