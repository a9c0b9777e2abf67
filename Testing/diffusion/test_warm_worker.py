"""The warm worker of an interactive session: one process serves request after request, keeps its model
until the checkpoint file changes, survives a cancel, is replaced after a kill, and is one per session."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from LNSynthLib.cases import ANATOMY_FILE, CT_FILE, LN_FILE, list_cases
from LNSynthLib.diffusion.sample.provenance import file_sha256
from LNSynthLib.jobs.chain import JobChain, Step
from LNSynthLib.jobs.runner import JobProcess
from LNSynthLib.jobs.warm_client import WarmWorker
from LNSynthLib.volumes.geometry import Geometry, Volume

from .conftest import micro_cli_sets, micro_config

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


def _stored(path: Path) -> bool:
    """Whether a gzip file's deflate stream starts with a stored block (level 0) rather than a compressed one."""
    head = path.read_bytes()[:11]
    assert head[:3] == b"\x1f\x8b\x08" and head[3] == 0   # no optional fields: the deflate stream starts at byte 10
    return (head[10] >> 1) & 3 == 0


@pytest.fixture(scope="module")
def inct_checkpoint(phantom_cases: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A micro run with 32³ windows, room for a phantom node and its border (as `test_inct`)."""
    from LNSynthLib.diffusion.train.training import train

    config = micro_config(**{"train.patch_size": [32, 32, 32], "sample.sampler": "dpmpp", "sample.steps": 2})
    return train(config, phantom_cases, tmp_path_factory.mktemp("inct_run"), device="cpu", progress=False)


def test_an_interactive_in_ct_chain_gives_the_one_shot_voxels_with_its_cts_stored(worker, inct_checkpoint,
                                                                                   phantom_cases, tmp_path):
    """prepare → sample --mode in-ct as the panel runs them: the warm worker (CTs stored, not deflated; the prepared
    case read back from what it wrote) and one process per step write the same voxels."""
    from LNSynthLib.volumes.io import read_volume

    source = list_cases(phantom_cases)[0]

    def steps(out: Path) -> list[list[str]]:
        return [["prepare", "--ct", str(source / CT_FILE), "--ln", str(source / LN_FILE), "--anatomy",
                 str(source / ANATOMY_FILE), "--anatomy-source", "file", "--labels-kind", "anatomy14", "--out",
                 str(out / "cases"), "--case-id", "painted", "--margin-mm", "100"],
                ["sample", "--checkpoint", str(inct_checkpoint), "--cases", str(out / "cases"), "--out",
                 str(out / "synthetic"), "--samples-per-case", "1", "--device", "cpu", "--mode", "in-ct"]]

    for args in steps(tmp_path / "warm"):
        state = worker.submit(args, env=WORKER_ENV).wait(600)
        assert state.returncode == 0, state.log_tail[-10:]
    for args in steps(tmp_path / "cold"):
        job = JobProcess(args, env=WORKER_ENV)
        assert job.wait(timeout_s=600).returncode == 0, job.state.log_tail[-10:]
    assert worker.starts == 1
    for folder in ("cases/painted", "synthetic/painted_inct_0"):
        for name in (CT_FILE, ANATOMY_FILE, LN_FILE):
            warm, cold = read_volume(tmp_path / "warm" / folder / name), read_volume(tmp_path / "cold" / folder / name)
            assert warm.array.dtype == cold.array.dtype and np.array_equal(warm.array, cold.array), (folder, name)
            assert warm.geometry == cold.geometry
        # The warm worker's CTs are stored (the raw size, no deflate time); its label maps still deflated.
        assert _stored(tmp_path / "warm" / folder / CT_FILE) and not _stored(tmp_path / "cold" / folder / CT_FILE)
        assert not _stored(tmp_path / "warm" / folder / ANATOMY_FILE)
    synthetic = read_volume(tmp_path / "warm" / "synthetic/painted_inct_0" / CT_FILE)
    assert not np.array_equal(synthetic.array, read_volume(tmp_path / "warm" / "cases/painted" / CT_FILE).array)


def test_a_volume_the_worker_wrote_reads_back_from_memory_as_from_its_file(tmp_path, monkeypatch):
    """`worker_cache`: the same voxels and geometry (an oblique grid, spacings float32 cannot hold) as reading the
    file; a copy each time; a file replaced since, a non-finite volume or another process: read from the file."""
    from LNSynthLib.errors import InputDataError
    from LNSynthLib.jobs.warm_worker import WARM_ENV
    from LNSynthLib.volumes import worker_cache
    from LNSynthLib.volumes.io import read_volume, write_volume, write_volumes

    c, s = np.cos(0.3), np.sin(0.3)
    geometry = Geometry((0.7, 0.9, 1.1), (-12.345678901, 33.3, 7.1), (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
    rng = np.random.default_rng(0)
    ct = Volume(rng.normal(0, 300, (9, 10, 11)).astype(np.float32), geometry)
    labels = Volume(rng.integers(0, 14, (9, 10, 11)).astype(np.uint8), geometry)
    worker_cache.clear()
    write_volume(ct, tmp_path / "outside.nii.gz")   # not a warm worker: nothing kept
    assert worker_cache.recall(tmp_path / "outside.nii.gz") is None

    monkeypatch.setenv(WARM_ENV, "1")
    write_volumes([(ct, tmp_path / "case" / "ct.nii.gz"), (labels, tmp_path / "case" / "anatomy.nii.gz")])
    (tmp_path / "case").rename(tmp_path / "renamed")   # as `write_case_folder` renames its folder into place
    kept = {name: worker_cache.recall(tmp_path / "renamed" / name) for name in ("ct.nii.gz", "anatomy.nii.gz")}
    worker_cache.clear()
    for name, volume in (("ct.nii.gz", ct), ("anatomy.nii.gz", labels)):
        from_file = read_volume(tmp_path / "renamed" / name)
        assert kept[name] is not None and kept[name].array.dtype == from_file.array.dtype
        assert np.array_equal(kept[name].array, from_file.array)
        assert kept[name].geometry == from_file.geometry != geometry   # the header's float32 geometry, as read
        write_volume(volume, tmp_path / "again" / name)
        first = read_volume(tmp_path / "again" / name)
        first.array[...] = 0   # a reader's own copy: the next read is unchanged
        assert np.array_equal(read_volume(tmp_path / "again" / name).array, from_file.array)

    path = tmp_path / "again" / "ct.nii.gz"
    replacement = tmp_path / "other.nii.gz"
    monkeypatch.delenv(WARM_ENV)
    write_volume(Volume(ct.array + 1, geometry), replacement)
    monkeypatch.setenv(WARM_ENV, "1")
    replacement.replace(path)   # another writer's file now: read from disk
    assert np.array_equal(read_volume(path).array, ct.array + 1)

    write_volume(ct, tmp_path / "input.nii.gz", stored=True)   # a job's input, as the panel exports its CT
    assert _stored(tmp_path / "input.nii.gz")
    worker_cache.clear()
    assert np.array_equal(read_volume(tmp_path / "input.nii.gz").array, ct.array)

    bad = ct.array.copy()
    bad[0, 0, 0] = np.nan
    write_volume(Volume(bad, geometry), tmp_path / "nan.nii.gz")   # never kept: the file's reader refuses it
    with pytest.raises(InputDataError, match="NaN|not finite|non-finite"):
        read_volume(tmp_path / "nan.nii.gz")
    worker_cache.clear()


def test_a_clicks_boxes_and_node_labels_are_those_of_the_whole_grid():
    """The in-CT steps find the nodes and the changed box from the masks' projections; the same as labelling and
    listing every voxel of the grid (`ndimage.label`/`find_objects`, `np.argwhere`)."""
    from scipy import ndimage

    from LNSynthLib.diffusion.sample.inpaint import _node_components
    from LNSynthScene.inct_job import _box

    rng = np.random.default_rng(0)
    for _ in range(200):
        shape = tuple(int(v) for v in rng.integers(1, 24, 3))
        mask = rng.random(shape) < rng.choice([0.0, 0.005, 0.05, 0.4])
        components, boxes = _node_components(mask)
        expected = ndimage.label(mask)[0]
        assert components.dtype == expected.dtype and np.array_equal(components, expected)
        assert boxes == ndimage.find_objects(expected)
        if mask.any():
            pad = int(rng.integers(0, 3))
            where = np.argwhere(mask)
            lo, hi = np.maximum(where.min(axis=0) - pad, 0), np.minimum(where.max(axis=0) + 1 + pad, shape)
            assert _box(mask, pad, shape) == tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
