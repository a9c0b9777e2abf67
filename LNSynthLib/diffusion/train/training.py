"""LN-DDPM training loop: Adam + L1 on ε, v or the rectified-flow velocity, EMA, bf16 autocast on GPU, DDP, exact resume.

A run folder holds `checkpoint.pt` (rolling, atomic), `config.yaml`, `loss.csv` and `loss.png`.
`train.batch_size` is per process; under torchrun the global batch (batch_size × world size) is
stored in the checkpoint, written at the top of config.yaml and in the first progress line.
Every random number of a step comes from streams stored in the checkpoint (patch sampler,
timestep/noise generator, global RNGs), so a run killed at any moment and resumed from its last
checkpoint continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from LNSynthLib.atomic import write_text_atomic
from LNSynthLib.devices import autocast_dtype, torch_device
from LNSynthLib.diffusion.config import LNDDPMConfig, save_config
from LNSynthLib.diffusion.process.processes import NoiseProcess, process_from_config
from LNSynthLib.diffusion.process.vlb import training_loss
from LNSynthLib.diffusion.train import distributed
from LNSynthLib.diffusion.train.checkpoint import (
    CHECKPOINT_NAME,
    capture_global_rng,
    load_checkpoint,
    restore_global_rng,
    save_checkpoint,
)
from LNSynthLib.diffusion.train.data import PatchSampler, load_training_cases
from LNSynthLib.diffusion.train.ema import EMA
from LNSynthLib.diffusion.train.loss_plot import plot_loss, write_loss_csv
from LNSynthLib.diffusion.train.run_folder import claim_run_dir
from LNSynthLib.errors import InputDataError, OutputExistsError
from LNSynthLib.jobs.progress import Progress


def _model_signature(config: LNDDPMConfig) -> dict[str, Any]:
    """Config parts a checkpoint's weights depend on; resuming with other values is refused."""
    d = config.to_dict()
    return {"network": d["network"], "diffusion": d["diffusion"], "patch_size": list(config.train.patch_size)}


def _check_resumable(payload: dict[str, Any], config: LNDDPMConfig, path: Path) -> None:
    from LNSynthLib.diffusion.train.checkpoint import config_of
    from LNSynthLib.diffusion.train.checkpoint_checks import check_resumable, check_same_recipe

    check_resumable(payload, path)
    stored = config_of(payload)
    if _model_signature(stored) != _model_signature(config):
        raise InputDataError("the run folder holds a checkpoint of a different model configuration", path=path,
                             fix="train with the same --config/--set values, or choose a new --run-dir")
    check_same_recipe(stored, config, path)


def _batch_comment(per_process: int, world_size: int) -> str:
    """Header of a run's config.yaml: the batch the run really used (train.batch_size is per process)."""
    return (f"# global batch {per_process * world_size} = train.batch_size {per_process} per process "
            f"x {world_size} process(es)\n")


def _check_same_global_batch(payload: dict[str, Any], global_batch: int, world_size: int, path: Path) -> None:
    """A run continues with the global batch it started with (else its data stream and recipe change)."""
    stored = int(payload.get("global_batch", global_batch))
    if stored != global_batch:
        raise InputDataError(f"the run was trained with global batch {stored} (checkpoint), this call would use "
                             f"{global_batch} (train.batch_size x {world_size} processes)", path=path,
                             fix="resume with the same number of processes and train.batch_size, or choose a "
                                 "new --run-dir")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _unwrap(model: nn.Module) -> nn.Module:
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


@dataclass
class _TrainState:
    """Everything a step changes and a checkpoint stores (the training run's mutable state)."""

    model: nn.Module
    ema: EMA
    optimizer: torch.optim.Optimizer
    schedule: NoiseProcess                 # DDPM Schedule or RectifiedFlow (diffusion.process)
    sampler: PatchSampler
    noise_gen: torch.Generator
    step: int = 0
    history: list[tuple[int, float]] = field(default_factory=list)
    pending: list[torch.Tensor] = field(default_factory=list)   # losses not yet averaged into history


def _build_state(config: LNDDPMConfig, cases_root: str | Path, dev: torch.device) -> _TrainState:
    """Fresh model, EMA, optimizer and random streams; the creation order fixes the seeded RNG draws."""
    from LNSynthLib.diffusion.model.network import build_denoiser

    tc = config.train
    seed_everything(tc.seed)
    model = build_denoiser(config).to(dev)
    ema = EMA(model, tc.ema_decay, warmup=tc.ema_warmup, every=tc.ema_every, start=tc.ema_start)
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, betas=tuple(tc.betas))
    schedule = process_from_config(config)
    sampler = PatchSampler(load_training_cases(cases_root, config.network.anatomy_labels), tc.patch_size,
                           tc.ln_patch_fraction, tc.seed)
    noise_gen = torch.Generator().manual_seed(tc.seed + 1)
    return _TrainState(model, ema, optimizer, schedule, sampler, noise_gen)


def _resume(state: _TrainState, config: LNDDPMConfig, ckpt_path: Path, dev: torch.device, global_batch: int,
            world_size: int) -> None:
    """Load a run's checkpoint into `state` (weights, optimizer, every random stream) after checking it fits."""
    payload = load_checkpoint(ckpt_path, map_location=dev)
    _check_resumable(payload, config, ckpt_path)
    _check_same_global_batch(payload, global_batch, world_size, ckpt_path)
    state.model.load_state_dict(payload["model"])
    state.ema.load_state_dict(payload["ema"])
    state.optimizer.load_state_dict(payload["optimizer"])
    state.sampler.load_state(payload["data_rng"])
    state.noise_gen.set_state(payload["noise_rng"])
    restore_global_rng(payload["rng"])
    state.step = int(payload["step"])
    state.history = [(int(s), float(v)) for s, v in payload["loss_history"]]


def _wrap(model: nn.Module, config: LNDDPMConfig, ctx: distributed.DistContext, dev: torch.device) -> nn.Module:
    """The module the steps call: DDP-wrapped under torchrun, compiled when `train.compile` is set."""
    net: nn.Module = model
    if ctx.enabled:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    if config.train.compile:
        net = torch.compile(net)
    return net


def _step(state: _TrainState, net: nn.Module, config: LNDDPMConfig, ctx: distributed.DistContext,
          dev: torch.device, amp_dtype: torch.dtype | None) -> None:
    """One optimizer step on this rank's slice of the global batch, then the EMA update."""
    global_batch = ctx.global_batch(config.train.batch_size)
    slice_ = ctx.batch_slice(config.train.batch_size)
    schedule = state.schedule
    batch = state.sampler.next_batch(global_batch)
    t = schedule.sample_timesteps(global_batch, state.noise_gen)
    noise = torch.randn(batch["x0"].shape, generator=state.noise_gen)
    x0, anatomy, ln = (batch[k][slice_].to(dev, non_blocking=True) for k in ("x0", "anatomy", "ln"))
    t, noise = t[slice_].to(dev), noise[slice_].to(dev)
    x_t = schedule.q_sample(x0, t, noise)
    target = schedule.training_target(x0, noise, t)
    with torch.autocast(dev.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        output = net(x_t, t, anatomy, ln)
    loss = training_loss(config, schedule, output, target, x0, x_t, t)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    state.optimizer.step()
    state.step += 1
    state.ema.update(state.model, state.step)
    state.pending.append(loss.detach())


def _log(state: _TrainState, ctx: distributed.DistContext, bar: Progress) -> None:
    """Average the pending losses over ranks into the history and show the latest on the main rank."""
    if ctx.is_main:
        state.history.extend(_flush(state.pending, state.step - len(state.pending) + 1, ctx))
        bar.update(state.step, loss=state.history[-1][1])
    else:
        _flush(state.pending, 0, ctx)


def _save(state: _TrainState, config: LNDDPMConfig, ctx: distributed.DistContext, ckpt_path: Path) -> None:
    """Checkpoint (atomic), loss.csv and loss.png from the main rank; every rank waits for it."""
    if ctx.is_main:
        history = state.history
        history.extend(_flush(state.pending, state.step - len(state.pending) + 1, ctx))
        save_checkpoint(ckpt_path, {
            "step": state.step, "config_yaml": save_config(config), "model": _unwrap(state.model).state_dict(),
            "ema": state.ema.state_dict(), "optimizer": state.optimizer.state_dict(),
            "data_rng": state.sampler.state(), "noise_rng": state.noise_gen.get_state(), "rng": capture_global_rng(),
            "global_batch": ctx.global_batch(config.train.batch_size), "world_size": ctx.world_size,
            "loss_history": [[s, v] for s, v in history]})
        write_loss_csv(history, ckpt_path.parent / "loss.csv")
        plot_loss(history, ckpt_path.parent / "loss.png")
    else:
        _flush(state.pending, 0, ctx)
    distributed.barrier(ctx)


def train(config: LNDDPMConfig, cases_root: str | Path, run_dir: str | Path, *, resume: bool = True,
          device: str = "auto", max_steps: int | None = None, progress: bool = True) -> Path:
    """Train (or continue training) LN-DDPM on the prepared cases; returns the checkpoint path.

    `max_steps` stops this call once the global step reaches it (a checkpoint is written), which
    lets a caller train in portions; `config.train.iterations` stays the total.
    """
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch_device(device, local_rank)
    ctx = distributed.setup(dev)
    run_dir = Path(run_dir)
    ckpt_path = run_dir / CHECKPOINT_NAME
    if ckpt_path.exists() and not resume:
        raise OutputExistsError("run folder already holds a checkpoint", path=ckpt_path,
                                fix="resume it (drop --no-resume), delete the folder, or choose a new --run-dir")
    claim_run_dir(run_dir, write_marker=ctx.is_main)   # never overwrite a user's own config.yaml / loss.csv
    tc = config.train
    global_batch = ctx.global_batch(tc.batch_size)
    state = _build_state(config, cases_root, dev)
    if ckpt_path.exists():
        _resume(state, config, ckpt_path, dev, global_batch, ctx.world_size)
    if ctx.is_main:
        write_text_atomic(run_dir / "config.yaml", _batch_comment(tc.batch_size, ctx.world_size) + save_config(config),
                          overwrite=True)

    net = _wrap(state.model, config, ctx, dev)
    amp_dtype = autocast_dtype(config.train.amp, dev)
    total = int(tc.iterations)
    stop = total if max_steps is None else min(total, int(max_steps))
    mode = None if progress and ctx.is_main else "quiet"
    bar = Progress("train", total, start_step=state.step, mode=mode)
    bar.message(f"global batch {global_batch} = train.batch_size {tc.batch_size} per process x {ctx.world_size} "
                "process(es)", global_batch=global_batch, batch_per_process=tc.batch_size,
                world_size=ctx.world_size)
    try:
        state.model.train()
        while state.step < stop:
            _step(state, net, config, ctx, dev, amp_dtype)
            if state.step % max(1, tc.log_every) == 0 or state.step == stop:
                _log(state, ctx, bar)
            if state.step % max(1, tc.checkpoint_every) == 0 or state.step == stop:
                _save(state, config, ctx, ckpt_path)
        if state.step >= stop and not ckpt_path.exists():
            _save(state, config, ctx, ckpt_path)
        bar.close(checkpoint=str(ckpt_path))
    finally:
        distributed.cleanup(ctx)
    return ckpt_path


def _flush(pending: list[torch.Tensor], first_step: int, ctx: distributed.DistContext) -> list[tuple[int, float]]:
    """Turn the losses of the last steps into (step, loss) rows, averaged over ranks."""
    if not pending:
        return []
    from LNSynthLib.diffusion.train.checkpoint_checks import check_finite_losses

    values = torch.stack(pending).float()
    pending.clear()
    if ctx.enabled:
        torch.distributed.all_reduce(values)
        values /= ctx.world_size
    rows = [(first_step + i, float(v)) for i, v in enumerate(values.cpu().tolist())]
    check_finite_losses(rows)   # a diverged run stops here, before any checkpoint of it is written
    return rows
