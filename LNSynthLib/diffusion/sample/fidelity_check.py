"""Measure how well a checkpoint (or an untrained net) follows its conditions on real patches.

Used by the learning tests (`Testing/diffusion/test_learning.py`): draw LN-containing patches
from prepared cases with a fixed seed, sample a CT for each patch's (anatomy, LN) condition and
compare with the real patch through `condition_fidelity`. The sampler benchmark
(`bench/diffusion_samplers.py`) measures the same figures on the window sampling uses.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from LNSynthLib.diffusion.config import LNDDPMConfig
from LNSynthLib.diffusion.process.processes import process_from_config
from LNSynthLib.diffusion.process.samplers import eta_used, steps_used
from LNSynthLib.diffusion.sample.condition_fidelity import condition_fidelity, follows_conditions
from LNSynthLib.diffusion.sample.sampling import sample_patch
from LNSynthLib.diffusion.train.data import PatchSampler, load_training_cases


def evaluation_patches(cases_root: str | Path, config: LNDDPMConfig, n: int, seed: int = 1234) -> dict[str, torch.Tensor]:
    """`n` seeded patches that each contain lymph-node voxels (x0 in [-1, 1], anatomy, ln)."""
    cases = load_training_cases(cases_root, config.network.anatomy_labels)
    return PatchSampler(cases, config.train.patch_size, 1.0, seed).next_batch(n)


def sample_conditions(model: nn.Module, config: LNDDPMConfig, patches: dict[str, torch.Tensor], *, sampler: str,
                      steps: int, eta: float = 1.0, seed: int = 0, batch_size: int = 4) -> tuple[list, list, float]:
    """Sample every patch's condition: (targets as (HU, anatomy, LN), generated HU, seconds of sampling)."""
    from LNSynthLib.volumes.preprocess import unit_to_hu

    schedule = process_from_config(config)
    model.eval()
    generated = []
    generator = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for i in range(0, len(patches["x0"]), batch_size):
        part = slice(i, i + batch_size)
        out = sample_patch(model, schedule, patches["anatomy"][part], patches["ln"][part], sampler, steps, eta,
                           generator)
        generated += [np.asarray(unit_to_hu(x[0].float().cpu().numpy())) for x in out]
    seconds = time.perf_counter() - t0
    targets = [(np.asarray(unit_to_hu(x[0].numpy())), a[0].numpy(), ln[0].numpy())
               for x, a, ln in zip(patches["x0"], patches["anatomy"], patches["ln"], strict=True)]
    return targets, generated, seconds


def check_fidelity(model: nn.Module, config: LNDDPMConfig, patches: dict[str, torch.Tensor], *, sampler: str,
                   steps: int, eta: float = 1.0, seed: int = 0, batch_size: int = 4) -> dict[str, Any]:
    """Sample every patch's condition; fidelity figures, wall time and whether the conditions are followed."""
    targets, generated, seconds = sample_conditions(model, config, patches, sampler=sampler, steps=steps, eta=eta,
                                                    seed=seed, batch_size=batch_size)
    result = condition_fidelity(targets, generated)
    timesteps = process_from_config(config).timesteps
    result.update(sampler=sampler, steps=steps_used(sampler, steps, timesteps),
                  eta=eta_used(sampler, eta), seconds=round(seconds, 2))
    result["follows_conditions"] = follows_conditions(result)
    return result
