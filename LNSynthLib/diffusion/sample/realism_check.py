"""Run the realism gate (`realism_gate.py`) on a checkpoint: sample the gate's windows, compare, check the loss."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from LNSynthLib.diffusion.config import LNDDPMConfig
from LNSynthLib.diffusion.process.processes import process_from_config
from LNSynthLib.diffusion.sample.fidelity_check import evaluation_patches
from LNSynthLib.diffusion.sample.realism_gate import (
    GATE_SEED,
    GATE_WINDOWS,
    gate,
    loss_plateau,
    realism_figures,
)
from LNSynthLib.diffusion.sample.sampling import sample_patch
from LNSynthLib.diffusion.train.loss_plot import read_loss_csv
from LNSynthLib.volumes.preprocess import unit_to_hu


def gate_windows(cases_root: str | Path, config: LNDDPMConfig, n: int = GATE_WINDOWS) -> dict[str, torch.Tensor]:
    """The gate's LN-containing windows of the training cases, drawn with `GATE_SEED`."""
    return evaluation_patches(cases_root, config, n, seed=GATE_SEED)


def check_realism(model: torch.nn.Module, config: LNDDPMConfig, windows: dict[str, torch.Tensor], *,
                  sampler: str, steps: int, eta: float, loss_csv: str | Path | None = None,
                  upto_step: int | None = None, seed: int = 0, batch_size: int = 4) -> dict[str, Any]:
    """Sample every window's condition and apply the gate; the loss history up to `upto_step` decides the plateau."""
    schedule = process_from_config(config)
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    generated = []
    t0 = time.perf_counter()
    for i in range(0, len(windows["x0"]), batch_size):
        part = slice(i, i + batch_size)
        out = sample_patch(model, schedule, windows["anatomy"][part], windows["ln"][part], sampler, steps, eta,
                           generator)
        generated += [np.asarray(unit_to_hu(x[0].float().cpu().numpy())) for x in out]
    seconds = time.perf_counter() - t0
    targets = [(np.asarray(unit_to_hu(x[0].numpy())), a[0].numpy(), ln[0].numpy())
               for x, a, ln in zip(windows["x0"], windows["anatomy"], windows["ln"], strict=True)]
    plateau = None
    if loss_csv is not None and Path(loss_csv).exists():
        history = [(s, v) for s, v in read_loss_csv(loss_csv) if upto_step is None or s <= upto_step]
        plateau = loss_plateau(history)
    result = gate(realism_figures(targets, generated), plateau)
    result.update(seconds=round(seconds, 2), n_windows=len(generated), sampler=sampler, steps=steps)
    return result
