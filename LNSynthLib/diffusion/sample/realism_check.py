"""Run the realism gate (`realism_gate.py`) on a checkpoint: sample the gate's windows, compare, check the loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from LNSynthLib.diffusion.config import LNDDPMConfig
from LNSynthLib.diffusion.sample.fidelity_check import evaluation_patches, sample_conditions
from LNSynthLib.diffusion.sample.realism_gate import (
    GATE_SEED,
    GATE_WINDOWS,
    gate,
    loss_plateau,
    realism_figures,
)
from LNSynthLib.diffusion.train.loss_plot import read_loss_csv


def gate_windows(cases_root: str | Path, config: LNDDPMConfig, n: int = GATE_WINDOWS) -> dict[str, torch.Tensor]:
    """The gate's LN-containing windows of the training cases, drawn with `GATE_SEED`."""
    return evaluation_patches(cases_root, config, n, seed=GATE_SEED)


def check_realism(model: torch.nn.Module, config: LNDDPMConfig, windows: dict[str, torch.Tensor], *,
                  sampler: str, steps: int, eta: float, loss_csv: str | Path | None = None,
                  upto_step: int | None = None, seed: int = 0, batch_size: int = 4) -> dict[str, Any]:
    """Sample every window's condition and apply the gate; the loss history up to `upto_step` decides the plateau."""
    targets, generated, seconds = sample_conditions(model, config, windows, sampler=sampler, steps=steps, eta=eta,
                                                    seed=seed, batch_size=batch_size)
    plateau = None
    if loss_csv is not None and Path(loss_csv).exists():
        history = [(s, v) for s, v in read_loss_csv(loss_csv) if upto_step is None or s <= upto_step]
        plateau = loss_plateau(history)
    result = gate(realism_figures(targets, generated), plateau)
    result.update(seconds=round(seconds, 2), n_windows=len(generated), sampler=sampler, steps=steps)
    return result
