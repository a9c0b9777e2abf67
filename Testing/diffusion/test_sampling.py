"""Sampling to files: layout, geometry, seeds, resume (skip complete outputs), shards, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from LNSynthLib.cases import list_cases, load_case
from LNSynthLib.conditions.transforms import organ_mask
from LNSynthLib.diffusion.process.schedule import Schedule
from LNSynthLib.diffusion.sample.sampling import load_model, sample_cases, sample_patch
from LNSynthLib.diffusion.sample.windows import patch_window
from LNSynthLib.diffusion.train.data import case_arrays, crop_case

REPO = Path(__file__).resolve().parents[2]
PATCH = (16, 16, 16)


@pytest.fixture(scope="module")
def sampled(straight_run: Path, phantom_cases: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic")
    sample_cases(straight_run, phantom_cases, out, samples_per_case=2, sampler="ddim", steps=3, eta=1.0, seed=4,
                 transforms=False, device="cpu", progress=False)
    return out


def test_layout_meta_and_geometry(sampled: Path, phantom_cases: Path) -> None:
    folders = list_cases(sampled)
    assert [f.name for f in folders] == [f"phantom_00{i}_synt_{k}" for i in range(3) for k in range(2)]
    from LNSynthLib.output_claims import CLAIM_FILES  # the folder's lock and recipe are no leftovers

    assert not [p for p in sampled.iterdir() if p.name.startswith(".") and p.name not in CLAIM_FILES], \
        "temporary folders left behind"
    synt = load_case(sampled / "phantom_001_synt_1")
    meta = synt.meta
    assert meta["synthetic"] is True and meta["source_case"] == "phantom_001" and meta["sample_index"] == 1
    assert (meta["sampler"], meta["steps"], meta["seed"], meta["transform_applied"]) == ("ddim", 3, 4, False)
    source = case_arrays(phantom_cases / "phantom_001")
    start = tuple(meta["patch_start_zyx"])
    assert meta["window_rule"] == "per_node" and meta["window"]["start_zyx"] == list(start)   # the default rule
    _, anatomy, ln = crop_case(source, start, PATCH)
    assert synt.ct.shape == PATCH
    assert np.array_equal(synt.anatomy.array, anatomy) and np.array_equal(synt.ln.array, ln)
    assert ln.any(), "the patch is centred on the lymph-node region"
    # the patch sits at its physical place inside the source case
    corner = source.geometry.index_to_physical(np.array(start[::-1], dtype=float))
    assert np.allclose(synt.ct.geometry.origin, corner)
    assert synt.ct.geometry.isclose(synt.ln.geometry)
    hu = synt.ct.array
    assert hu.dtype == np.float32 and -120.0 - 1e-3 <= hu.min() and hu.max() <= 240.0 + 1e-3


def test_rerun_skips_complete_outputs(sampled: Path, straight_run: Path, phantom_cases: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in sampled.rglob("ct.nii.gz")}
    again = sample_cases(straight_run, phantom_cases, sampled, samples_per_case=2, sampler="ddim", steps=3, seed=4,
                         transforms=False, device="cpu", progress=False)
    assert sorted(again) == sorted(list_cases(sampled))
    assert {p: p.stat().st_mtime_ns for p in sampled.rglob("ct.nii.gz")} == before


def test_shards_through_the_cli_reproduce_the_single_run(sampled: Path, straight_run: Path, phantom_cases: Path,
                                                          tmp_path: Path) -> None:
    """Samples are seeded per (seed, case, k): shard 1/2 run by the CLI gives the same CT arrays."""
    cmd = [sys.executable, "-m", "LNSynthLib", "sample", "--checkpoint", str(straight_run), "--cases",
           str(phantom_cases), "--out", str(tmp_path), "--samples-per-case", "2", "--sampler", "ddim", "--steps", "3",
           "--eta", "1", "--seed", "4", "--no-transforms", "--shard", "1/2", "--device", "cpu"]
    out = subprocess.run(cmd, cwd=REPO, env={**os.environ, "LNSYNTH_PROGRESS": "json"}, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert last == {"stage": "result", "kind": "cases", "path": str(tmp_path), "count": 2}
    names = [f.name for f in list_cases(tmp_path)]
    assert names == ["phantom_001_synt_0", "phantom_001_synt_1"]
    for name in names:
        assert np.array_equal(load_case(tmp_path / name).ct.array, load_case(sampled / name).ct.array)



def test_cli_rejects_a_bad_shard(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from LNSynthLib.cli.main import main

    code = main(["sample", "--checkpoint", str(tmp_path / "c.pt"), "--cases", str(tmp_path), "--out",
                 str(tmp_path / "out"), "--shard", "2/2"])
    assert code == 2 and "--shard" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_transformed_conditions_keep_anatomy_and_avoid_organs(straight_run: Path, phantom_cases: Path,
                                                               tmp_path: Path) -> None:
    folders = sample_cases(straight_run, phantom_cases, tmp_path, samples_per_case=1, sampler="ddim", steps=2,
                           seed=1, transforms=True, device="cpu", progress=False)
    changed = 0
    for folder in folders:
        synt = load_case(folder)
        assert synt.meta["transform_applied"] is True and synt.meta["transform"]["nodes_in"] >= 1
        source = case_arrays(phantom_cases / synt.meta["source_case"])
        _, anatomy, ln = crop_case(source, synt.meta["patch_start_zyx"], PATCH)
        assert np.array_equal(synt.anatomy.array, anatomy)
        new_ln = synt.ln.array > 0
        assert (new_ln & organ_mask(anatomy)).sum() <= (ln.astype(bool) & organ_mask(anatomy)).sum()
        changed += int(not np.array_equal(new_ln, ln > 0))
    assert changed >= 1


def test_sample_patch_is_seeded(straight_run: Path, phantom_cases: Path) -> None:
    model, config, info = load_model(straight_run, torch.device("cpu"))
    assert info["checkpoint_step"] == 4 and info["ema"] is True
    source = case_arrays(phantom_cases / "phantom_000")
    _, anatomy, ln = crop_case(source, patch_window(source, PATCH), PATCH)
    schedule = Schedule.from_config(config)

    def draw(seed: int) -> torch.Tensor:
        return sample_patch(model, schedule, anatomy, ln, "ddim", 3, 1.0, torch.Generator().manual_seed(seed))

    a = draw(0)
    assert a.shape == (1, 1, *PATCH) and float(a.abs().max()) <= 1.0
    assert torch.equal(a, draw(0)) and not torch.equal(a, draw(1))
    # Unset values come from the model's config (the one home of sampling defaults): steps 3 given, rest tiny's.
    assert (config.sample.sampler, config.sample.eta) == ("ddim", 1.0)
    from_config = sample_patch(model, schedule, anatomy, ln, steps=3, generator=torch.Generator().manual_seed(0),
                               config=config)
    assert torch.equal(from_config, a)
    with pytest.raises(ValueError, match="config"):
        sample_patch(model, schedule, anatomy, ln, steps=3)


def test_unset_sampling_values_come_from_the_checkpoint_config(straight_run: Path, phantom_cases: Path,
                                                               tmp_path: Path) -> None:
    _, config, _ = load_model(straight_run, torch.device("cpu"))
    sample = config.sample   # tiny.yaml: ddim, 20 steps, eta 1.0, 5 per case
    folders = sample_cases(straight_run, phantom_cases, tmp_path, steps=2, shard=(0, 3), transforms=False,
                           device="cpu", progress=False)
    assert len(folders) == sample.samples_per_case == 5
    meta = load_case(folders[0]).meta
    assert (meta["sampler"], meta["steps"], meta["eta"]) == (sample.sampler, 2, sample.eta)


def test_sampling_settings_are_checked_like_the_config() -> None:
    from LNSynthLib.diffusion.config import load_config
    from LNSynthLib.errors import ConfigError

    config = load_config("paper")
    assert config.sampling() == config.sample
    chosen = config.sampling(sampler="dpmpp", steps=10)
    assert (chosen.sampler, chosen.steps, chosen.eta, chosen.samples_per_case) == ("dpmpp", 10, 1.0, 10)
    with pytest.raises(ConfigError, match=r"sample\.steps = 0 is out of range"):
        config.sampling(steps=0)
    with pytest.raises(ConfigError, match=r"sample\.samples_per_case = 0"):
        config.sampling(samples_per_case=0)


def test_cancel_through_the_job_runner_then_resume(straight_run: Path, phantom_cases: Path, tmp_path: Path) -> None:
    """SIGTERM from JobProcess.cancel mid-run: complete cases stay, nothing half-written; a rerun finishes."""
    import time

    from LNSynthLib.jobs.runner import JobProcess

    args = ["sample", "--checkpoint", str(straight_run), "--cases", str(phantom_cases), "--out", str(tmp_path),
            "--n", "1", "--sampler", "ddim", "--steps", "20", "--device", "cpu", "--no-transforms"]
    job = JobProcess(args, cwd=REPO)
    deadline = time.monotonic() + 240
    while not list_cases(tmp_path):
        assert job.poll().running, job.state.log_tail
        assert time.monotonic() < deadline
        time.sleep(0.02)
    job.cancel()
    state = job.wait(timeout_s=60)
    assert state.cancelled and state.returncode == 130, state.log_tail
    assert state.stage == "sample" and state.total == 3 * 20
    first = list_cases(tmp_path)
    assert 1 <= len(first) < 3
    from LNSynthLib.output_claims import CLAIM_FILES  # the folder's lock and recipe are no leftovers

    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") and p.name not in CLAIM_FILES], \
        "half-written folder left behind"
    stamp = (first[0] / "ct.nii.gz").stat().st_mtime_ns
    done = JobProcess(args, cwd=REPO).wait(timeout_s=240)
    assert done.returncode == 0, done.log_tail
    assert len(list_cases(tmp_path)) == 3
    assert (first[0] / "ct.nii.gz").stat().st_mtime_ns == stamp


def test_pipeline_sampling_stage_takes_its_settings_from_the_config(straight_run: Path, phantom_cases: Path,
                                                                     tmp_path: Path) -> None:
    from LNSynthLib.pipeline import Layout, PipelineSettings, sample_synthetic

    layout = Layout(tmp_path)
    layout.train_cases.parent.mkdir(parents=True)
    layout.train_cases.symlink_to(phantom_cases, target_is_directory=True)
    settings = PipelineSettings(ddpm_overrides={"sample.samples_per_case": 1, "sample.sampler": "dpmpp",
                                                "sample.steps": 2}, device="cpu")
    sample_synthetic(layout, settings, straight_run)
    folders = list_cases(layout.synthetic)
    assert [f.name for f in folders] == [f"phantom_00{i}_synt_0" for i in range(3)]
    meta = load_case(folders[0]).meta
    assert (meta["sampler"], meta["steps"], meta["eta"]) == ("dpmpp", 2, None)
