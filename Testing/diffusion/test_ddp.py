"""DDP on CPU: `torchrun --nproc_per_node 2 -m LNSynthLib train` (gloo) equals one process with the
same global batch, because every rank draws the global batch and trains on its own part.

`train.batch_size` is per process: 2 ranks of batch 1 make the global batch 2 of the one-process run,
and the paper's batch 1 runs under torchrun as docs/gpu-server.md writes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from LNSynthLib.diffusion.train.checkpoint import load_checkpoint

from .conftest import MICRO_STEPS, micro_cli_sets, micro_config

REPO = Path(__file__).resolve().parents[2]


def _torchrun_train(config: str, phantom_cases: Path, run_dir: Path, sets: list[str]) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node 2 -m LNSynthLib train` on CPU (gloo), progress as JSON lines."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "LNSynthLib", "train", "--config", config, "--cases", str(phantom_cases), "--run-dir", str(run_dir),
           "--device", "cpu", *sets]
    env = {**os.environ, "LNSYNTH_PROGRESS": "json", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def test_two_gloo_ranks_match_one_process(straight_run: Path, phantom_cases: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "ddp"
    # MICRO's batch 2 in one process = 2 processes of batch 1 each
    _torchrun_train("tiny", phantom_cases, run_dir, [*micro_cli_sets(), "--set", "train.batch_size=1"])
    single, ddp = load_checkpoint(straight_run), load_checkpoint(run_dir / "checkpoint.pt")
    assert ddp["step"] == single["step"] == MICRO_STEPS
    loss_single = torch.tensor([v for _, v in single["loss_history"]])
    loss_ddp = torch.tensor([v for _, v in ddp["loss_history"]])
    assert torch.allclose(loss_single, loss_ddp, rtol=1e-4, atol=1e-5), (loss_single, loss_ddp)
    # Adam turns float-rounding differences of near-zero gradients into steps of size lr, so the
    # weights are compared as a whole: their distance must be tiny next to how far training moved them.
    from LNSynthLib.diffusion.model.network import build_denoiser
    from LNSynthLib.diffusion.train.training import seed_everything

    cfg = micro_config()
    seed_everything(cfg.train.seed)
    init = build_denoiser(cfg).state_dict()
    keys = [k for k in init if init[k].is_floating_point()]
    moved = torch.cat([(single["model"][k] - init[k]).flatten() for k in keys]).norm()
    apart = torch.cat([(single["model"][k] - ddp["model"][k]).flatten() for k in keys]).norm()
    assert float(apart / moved) < 0.02, float(apart / moved)
    # one writer: rank 0 wrote the run folder, nothing half-written is left
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint.pt", "config.yaml", "lnsynth_run.json",
                                                         "loss.csv", "loss.png"]
    assert (ddp["global_batch"], ddp["world_size"], single["global_batch"]) == (2, 2, 2)


# The paper config as written (batch 1, ε/L1, T 300, DDPM, res_blocks 2, 4 levels, transformer at patch/8),
# shrunk only in the sizes a CPU cannot afford.
PAPER_SHAPED = ["--set", "train.patch_size=[16,16,16]", "--set", "network.channels=[8,16,32,32]",
                "--set", "network.norm_groups=8", "--set", "train.iterations=2", "--set", "train.log_every=1"]


def test_paper_config_batch_one_per_rank_under_torchrun(phantom_cases: Path, tmp_path: Path) -> None:
    """docs/gpu-server.md's `torchrun --nproc_per_node N -m LNSynthLib train --config paper` works as written."""
    run_dir = tmp_path / "paper_ddp"
    out = _torchrun_train("paper", phantom_cases, run_dir, PAPER_SHAPED)
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")
    assert ckpt["step"] == 2
    assert (ckpt["global_batch"], ckpt["world_size"]) == (2, 2)
    config_yaml = (run_dir / "config.yaml").read_text(encoding="utf-8")
    assert config_yaml.startswith("# global batch 2 = train.batch_size 1 per process x 2 process(es)\n")
    assert "batch_size: 1\n" in config_yaml and "name: paper\n" in config_yaml
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    first_train = next(line for line in lines if line.get("stage") == "train" and "global_batch" in line)
    assert (first_train["global_batch"], first_train["batch_per_process"], first_train["world_size"]) == (2, 1, 2)
    assert first_train["step"] == 0
