"""Synthetic cases from a trained LN-DDPM: anatomy kept, LN mask transformed, CT patch sampled.

For every source case and sample a `patch_size` window is chosen by the `sample.window` rule
(`windows.py`: around each node cluster in turn by default, so every node appears); each synthetic case `<case_id>_synt_<k>` is that window's anatomy, the
(transformed) LN mask and the generated CT in HU, on the window's physical grid. Sample k of a
case is seeded from (seed, case id, k) alone, so results do not depend on sharding or on
resuming. A case folder is written under a temporary name and renamed when complete; complete
outputs are skipped on a rerun, so an interrupted job resumes where it stopped.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from LNSynthLib.cases import Case, is_synthetic, write_case_folder
from LNSynthLib.cases import list_cases as list_case_folders
from LNSynthLib.devices import autocast_dtype, torch_device
from LNSynthLib.diffusion.config import LNDDPMConfig
from LNSynthLib.diffusion.process.processes import NoiseProcess, process_from_config
from LNSynthLib.diffusion.process.samplers import eta_used, run_sampler, steps_used
from LNSynthLib.diffusion.sample.provenance import check_same_origin, is_done, origin
from LNSynthLib.diffusion.sample.windows import sample_window
from LNSynthLib.diffusion.train.checkpoint import config_of, load_checkpoint
from LNSynthLib.diffusion.train.data import CaseArrays, case_arrays, crop_case
from LNSynthLib.errors import InputDataError
from LNSynthLib.jobs.progress import Progress
from LNSynthLib.jobs.warm_worker import WARM_ENV
from LNSynthLib.output_claims import claim_output_folder
from LNSynthLib.shards import this_shard
from LNSynthLib.volumes.geometry import Volume

SYNTHETIC_TAG = "_synt_"


# Models a warm worker (`jobs/warm_worker.py`) keeps loaded, keyed by the checkpoint file's identity.
_LOADED: dict[tuple, tuple[nn.Module, LNDDPMConfig, dict]] = {}


def load_model(checkpoint: str | Path, device: torch.device, use_ema: bool = True) -> tuple[nn.Module, LNDDPMConfig, dict]:
    """Denoiser with the checkpoint's EMA (default) or raw weights, in eval mode on `device`.

    In a warm worker the model stays loaded for the next request, until the file changes (another path,
    size or modification time: a training that saved again, or another checkpoint chosen).
    """
    if os.environ.get(WARM_ENV) != "1":
        return _load_model(checkpoint, device, use_ema)
    path = Path(checkpoint).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, str(device), use_ema)
    if key not in _LOADED:
        _LOADED.clear()   # one model at a time: a session samples from the checkpoint it shows
        _LOADED[key] = _load_model(checkpoint, device, use_ema)
    return _LOADED[key]


def _load_model(checkpoint: str | Path, device: torch.device, use_ema: bool) -> tuple[nn.Module, LNDDPMConfig, dict]:
    from LNSynthLib.diffusion.model.network import build_denoiser

    payload = load_checkpoint(checkpoint)
    config = config_of(payload)
    model = build_denoiser(config)
    model.load_state_dict(payload["ema" if use_ema else "model"])
    from LNSynthLib.diffusion.sample.provenance import file_sha256

    info = {"checkpoint": str(Path(checkpoint).resolve()), "checkpoint_step": int(payload["step"]),
            "checkpoint_sha256": file_sha256(checkpoint), "ema": use_ema}
    return model.to(device).eval(), config, info


def sample_patch(model: nn.Module, schedule: NoiseProcess, anatomy: torch.Tensor | np.ndarray,
                 ln: torch.Tensor | np.ndarray, sampler: str | None = None, steps: int | None = None,
                 eta: float | None = None, generator: torch.Generator | None = None, *,
                 config: LNDDPMConfig | None = None, amp_dtype: torch.dtype | None = None,
                 callback: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Sample CT patches in [-1, 1] for conditions (anatomy labels, LN 0/1), shape [B,1,D,H,W].

    A 3D array (D,H,W) is taken as one condition. Runs on the device of `model`. `sampler`,
    `steps` and `eta` left as None come from `config.sample` (the model's config, as
    returned by `load_model`), the single home of sampling defaults.
    """
    if None in (sampler, steps, eta):
        if config is None:
            raise ValueError("sample_patch needs sampler, steps and eta, or the model's config for the unset ones")
        settings = config.sampling(sampler=sampler, steps=steps, eta=eta)
        sampler, steps, eta = settings.sampler, settings.steps, settings.eta
    device = next(model.parameters()).device
    anatomy_t = torch.as_tensor(np.asarray(anatomy) if not torch.is_tensor(anatomy) else anatomy)
    ln_t = torch.as_tensor(np.asarray(ln) if not torch.is_tensor(ln) else ln)
    while anatomy_t.dim() < 5:
        anatomy_t, ln_t = anatomy_t[None], ln_t[None]
    anatomy_t = anatomy_t.to(device=device, dtype=torch.long)
    ln_t = (ln_t > 0).to(device=device, dtype=torch.float32)
    generator = generator or torch.Generator().manual_seed(0)

    def model_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            return model(x, t, anatomy_t, ln_t)

    with torch.inference_mode():
        return run_sampler(model_fn, schedule, tuple(anatomy_t.shape), sampler=sampler, steps=steps, eta=eta,
                           generator=generator, device=device, callback=callback)


def sample_seed(seed: int, case_id: str, k: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), zlib.crc32(case_id.encode("utf-8")), int(k)])


def sample_cases(checkpoint: str | Path, cases_root: str | Path, out_root: str | Path, *,
                 samples_per_case: int | None = None, sampler: str | None = None, steps: int | None = None,
                 eta: float | None = None, seed: int = 0, transforms: bool = True,
                 shard: tuple[int, int] = (0, 1), device: str = "auto", overwrite: bool = False,
                 use_ema: bool = True, progress: bool = True,
                 transform_options: dict[str, Any] | None = None, window: str | None = None) -> list[Path]:
    """Write `samples_per_case` synthetic cases per source case (this shard's cases); returns their folders.

    `samples_per_case`, `sampler`, `steps` or `eta` left as None take the checkpoint config's
    `sample` values (`LNDDPMConfig.sampling`); front ends pass None unless the user chose.
    `window` (None: the config's `sample.window`) is the window rule of `windows.py`.
    """
    from LNSynthLib.conditions.transforms import transform_ln_mask
    from LNSynthLib.volumes.preprocess import unit_to_hu

    index, count = this_shard(shard)
    dev = torch_device(device, int(os.environ.get("LOCAL_RANK", "0")))
    model, config, ckpt_info = load_model(checkpoint, dev, use_ema)
    chosen = config.sampling(sampler=sampler, steps=steps, eta=eta, samples_per_case=samples_per_case)
    sampler, steps, eta, n_per_case = chosen.sampler, chosen.steps, chosen.eta, chosen.samples_per_case
    window_rule = window or config.sample.window
    replace(config, sample=replace(chosen, window=window_rule)).validate()
    schedule = process_from_config(config)
    patch = tuple(int(s) for s in config.train.patch_size)
    amp = autocast_dtype(config.train.amp, dev)
    folders = list_case_folders(cases_root)
    if not folders:
        raise InputDataError("no prepared cases found", path=cases_root, fix="run `lnsynth prepare` first")
    mine = [f for i, f in enumerate(folders) if i % count == index and not is_synthetic(f)]
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    n_steps = steps_used(sampler, steps, schedule.timesteps)
    wanted = origin({**ckpt_info, "sampler": sampler, "steps": n_steps, "eta": eta_used(sampler, eta),
                     "seed": seed, "transforms": bool(transforms), "window_rule": window_rule})
    # One folder, one checkpoint and settings: shards started at once too (a lock per output folder).
    if not overwrite:   # before the claim too: a refused run changes nothing
        check_same_origin(out_root, wanted, SYNTHETIC_TAG)
    claim = claim_output_folder(out_root, {**wanted, "cases": str(Path(cases_root).resolve())}, "lnsynth sample")
    if not overwrite:   # and after it: a shard that finished in between
        check_same_origin(out_root, wanted, SYNTHETIC_TAG)
    todo = [(f, k) for f in mine for k in range(n_per_case)
            if overwrite or not is_done(out_root / f"{f.name}{SYNTHETIC_TAG}{k}")]
    bar = Progress("sample", len(todo) * n_steps, mode=None if progress else "quiet")
    written: list[Path] = []
    done = 0
    loaded: dict[Path, CaseArrays] = {}
    for folder in mine:
        for k in range(n_per_case):
            final = out_root / f"{folder.name}{SYNTHETIC_TAG}{k}"
            if (folder, k) not in todo:
                written.append(final)
                continue
            case = loaded.setdefault(folder, case_arrays(folder, config.network.anatomy_labels))
            seeds = sample_seed(seed, case.case_id, k)
            rng = np.random.default_rng(seeds)
            start, window = sample_window(case, patch, window_rule, k, np.random.default_rng(seeds.spawn(1)[0]))
            _, anatomy, ln = crop_case(case, start, patch)
            transform_info = None
            if transforms and ln.any():
                ln, transform_info = transform_ln_mask(ln, anatomy, rng, **(transform_options or {}))
            generator = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
            base = done * n_steps
            unit = sample_patch(model, schedule, anatomy, ln, sampler, steps, eta, generator, amp_dtype=amp,
                                callback=lambda i, _n, base=base: bar.update(base + i))
            hu = np.asarray(unit_to_hu(unit[0, 0].float().cpu().numpy()), dtype=np.float32)
            geometry = case.geometry.shifted(start)
            meta = {"synthetic": True, "source_case": case.case_id, "sample_index": k, "seed": seed,
                    "sampler": sampler, "steps": n_steps, "eta": eta_used(sampler, eta),
                    "transforms": bool(transforms),
                    "transform_applied": transform_info is not None, "transform": transform_info,
                    "patch_start_zyx": [int(s) for s in start], "patch_size_zyx": list(patch), "window_rule": window_rule,
                    "window": window,
                    **ckpt_info}
            write_case_folder(Case(final.name, Volume(hu, geometry), Volume(anatomy, geometry),
                                    Volume(ln.astype(np.uint8), geometry), meta), final, overwrite)
            written.append(final)
            done += 1
        loaded.pop(folder, None)
    bar.close(written=len(written))
    claim.release()
    return written

