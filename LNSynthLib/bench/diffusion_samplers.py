"""Part (b) of `lnsynth bench diffusion`: few-step samplers against DDPM on one trained checkpoint.

Each sampler generates one patch per condition (anatomy + LN of a prepared case, the window
sampling uses) from the same seeds; quality is the condition fidelity of
`diffusion.sample.condition_fidelity` against the real CT of that window (per-region mean HU Pearson r,
LN−fat contrast), so a fast sampler is only worth having when it keeps DDPM's figures.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from LNSynthLib.cases import is_synthetic, list_cases
from LNSynthLib.devices import autocast_dtype, torch_device
from LNSynthLib.diffusion.process.processes import process_from_config
from LNSynthLib.diffusion.process.samplers import eta_used, steps_used
from LNSynthLib.diffusion.sample.condition_fidelity import condition_fidelity
from LNSynthLib.diffusion.sample.sampling import load_model, sample_patch
from LNSynthLib.diffusion.sample.windows import patch_window
from LNSynthLib.diffusion.train.data import case_arrays, crop_case
from LNSynthLib.errors import InputDataError
from LNSynthLib.volumes.preprocess import unit_to_hu

# (sampler, steps, eta); DDPM always runs all T steps.
SAMPLER_RUNS = [("ddpm", None, 1.0), ("ddim", 50, 1.0), ("ddim", 20, 1.0), ("ddim", 10, 1.0), ("ddim", 20, 0.0),
            ("dpmpp", 20, 0.0), ("dpmpp", 10, 0.0)]
QUICK_SAMPLERS = [("ddpm", None, 1.0), ("ddim", 10, 1.0), ("dpmpp", 10, 0.0)]


def compare_samplers(checkpoint: str | Path, cases_root: str | Path, n_cases: int = 4, quick: bool = False,
                     seed: int = 0, samplers: list[tuple[str, int | None, float]] | None = None) -> dict[str, Any]:
    """One row per (sampler, steps, eta): wall time for all conditions at once and condition fidelity."""
    device = torch_device("auto")
    model, config, info = load_model(checkpoint, device)
    schedule = process_from_config(config)
    amp = autocast_dtype(config.train.amp, device)
    patch = tuple(int(s) for s in config.train.patch_size)
    folders = [f for f in list_cases(cases_root) if not is_synthetic(f)][:n_cases]
    if not folders:
        raise InputDataError("no prepared cases found", path=cases_root, fix="run `lnsynth phantom` or `lnsynth prepare`")
    targets = []
    for folder in folders:
        case = case_arrays(folder, config.network.anatomy_labels)
        ct, anatomy, ln = crop_case(case, patch_window(case, patch), patch)
        targets.append((np.asarray(unit_to_hu(ct), dtype=np.float32), anatomy, ln))
    anatomy = torch.as_tensor(np.stack([t[1] for t in targets])[:, None].astype(np.int64))
    ln = torch.as_tensor(np.stack([t[2] for t in targets])[:, None].astype(np.float32))

    rows = []
    for sampler, steps, eta in samplers or (QUICK_SAMPLERS if quick else SAMPLER_RUNS):
        generator = torch.Generator().manual_seed(seed)
        t0 = time.perf_counter()
        unit = sample_patch(model, schedule, anatomy, ln, sampler, steps or schedule.timesteps, eta, generator,
                            amp_dtype=amp)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall = time.perf_counter() - t0
        generated = [np.asarray(unit_to_hu(u[0].float().cpu().numpy()), dtype=np.float32) for u in unit]
        fid = condition_fidelity(targets, generated)
        rows.append({"sampler": sampler, "steps": steps_used(sampler, steps or schedule.timesteps, schedule.timesteps),
                     "eta": eta_used(sampler, eta), "wall_s": wall, "s_per_sample": wall / len(targets),
                     **fid})
    return {"status": "run", "checkpoint": str(checkpoint), "checkpoint_step": info["checkpoint_step"],
            "config": config.name, "prediction": config.diffusion.prediction, "patch_size": list(patch),
            "device": str(device), "n_samples": len(targets), "samplers": rows}
