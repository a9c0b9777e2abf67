"""DDP on CPU: `torchrun --nproc_per_node 2 -m LNSynthLib train` (gloo) equals one process with the
same global batch, because every rank draws the global batch and trains on its own half."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from LNSynthLib.diffusion.checkpoint import load_checkpoint

from .conftest import MICRO_STEPS, micro_cli_sets, micro_config

REPO = Path(__file__).resolve().parents[2]


def test_two_gloo_ranks_match_one_process(straight_run: Path, phantom_cases: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "LNSynthLib", "train", "--config", "tiny", "--cases", str(phantom_cases), "--run-dir", str(run_dir),
           "--device", "cpu", *micro_cli_sets()]
    env = {**os.environ, "LNSYNTH_PROGRESS": "json", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    single, ddp = load_checkpoint(straight_run), load_checkpoint(run_dir / "checkpoint.pt")
    assert ddp["step"] == single["step"] == MICRO_STEPS
    loss_single = torch.tensor([v for _, v in single["loss_history"]])
    loss_ddp = torch.tensor([v for _, v in ddp["loss_history"]])
    assert torch.allclose(loss_single, loss_ddp, rtol=1e-4, atol=1e-5), (loss_single, loss_ddp)
    # Adam turns float-rounding differences of near-zero gradients into steps of size lr, so the
    # weights are compared as a whole: their distance must be tiny next to how far training moved them.
    from LNSynthLib.diffusion.network import build_denoiser
    from LNSynthLib.diffusion.training import seed_everything

    cfg = micro_config()
    seed_everything(cfg.train.seed)
    init = build_denoiser(cfg).state_dict()
    keys = [k for k in init if init[k].is_floating_point()]
    moved = torch.cat([(single["model"][k] - init[k]).flatten() for k in keys]).norm()
    apart = torch.cat([(single["model"][k] - ddp["model"][k]).flatten() for k in keys]).norm()
    assert float(apart / moved) < 0.02, float(apart / moved)
    # one writer: rank 0 wrote the run folder, nothing half-written is left
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint.pt", "config.yaml", "lnsynth_run.json", "loss.csv",
                                                         "loss.png"]
