"""Reverse-process samplers: DDPM ancestral (the paper, T steps), DDIM (any step count, η),
DPM-Solver++(2M), and the Euler sampler of rectified flow (`rflow.py`, process `rflow`).

All samplers draw every random number from one CPU `torch.Generator` (then move it to the
device), so a seed gives the same sample on any device and for any batch split. DDIM with
`steps = T` and `η = 1` is algebraically DDPM ancestral sampling with the posterior variance
β̃_t; both draw their noise in the same order, so they agree to float precision — the test of
sampler correctness.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from LNSynthLib.diffusion.choices import SAMPLERS
from LNSynthLib.diffusion.process.rflow import RectifiedFlow, rflow_sample
from LNSynthLib.diffusion.process.schedule import Schedule
from LNSynthLib.diffusion.process.vlb import split_output

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
StepCallback = Callable[[int, int], None]


def spaced_timesteps(timesteps: int, steps: int) -> list[int]:
    """`steps` timesteps from T-1 down to 0, evenly spaced (all of them when steps >= T)."""
    steps = max(1, min(int(steps), timesteps))
    seq = np.unique(np.round(np.linspace(0, timesteps - 1, steps)).astype(int))
    return [int(t) for t in seq[::-1]]


def solver_timesteps(timesteps: int, steps: int) -> list[int]:
    """DPM-Solver++ evaluation times: `steps` of linspace(0, T-1, steps+1) from T-1 down, without t = 0.

    The solver's last step goes from the last of these to the data (σ = 0) with its first-order
    update, which for data prediction is that evaluation's x0; so no evaluation is spent at t = 0,
    where the noise is almost gone (diffusers' DPMSolverMultistep with `timestep_spacing="linspace"`
    and `final_sigmas_type="zero"`). At 4 steps: 299, 224, 150, 75 for T = 300.
    """
    steps = max(1, min(int(steps), timesteps))
    seq = np.unique(np.round(np.linspace(0, timesteps - 1, steps + 1)).astype(int))[::-1]
    return [int(t) for t in seq if t > 0] or [timesteps - 1]


def steps_used(sampler: str, steps: int, timesteps: int) -> int:
    """Network evaluations a sampler makes: all T for `ddpm`, else the spaced step count (at most T)."""
    if sampler == "rflow":
        return min(max(1, int(steps)), timesteps)
    if sampler == "dpmpp":
        return len(solver_timesteps(timesteps, steps))
    return timesteps if sampler == "ddpm" else len(spaced_timesteps(timesteps, steps))


def eta_used(sampler: str, eta: float) -> float | None:
    """η matters only to DDIM (DDPM is η = 1 by construction, DPM-Solver++ and rflow are deterministic)."""
    return eta if sampler == "ddim" else None


def _noise(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randn(shape, generator=generator, dtype=torch.float32).to(device)


def _tvec(t: int, batch: int, device: torch.device) -> torch.Tensor:
    return torch.full((batch,), t, dtype=torch.long, device=device)


@torch.no_grad()
def ddpm_sample(model_fn: ModelFn, schedule: Schedule, shape: tuple[int, ...], generator: torch.Generator,
                device: torch.device, callback: StepCallback | None = None) -> torch.Tensor:
    """Ancestral sampling through all T steps with x0 clipped to [-1, 1] and variance β̃_t.

    A learned-variance model (`vlb.py`) samples with its own variance exp(model_log_variance).
    """
    x = _noise(shape, generator, device)
    T = schedule.timesteps
    ab = schedule.alphas_cumprod
    ab_prev = schedule.alphas_cumprod_prev
    coef_x0 = schedule.betas * ab_prev.sqrt() / (1 - ab)
    coef_xt = (1 - ab_prev) * schedule.alphas.sqrt() / (1 - ab)
    for i, t in enumerate(range(T - 1, -1, -1)):
        tt = _tvec(t, shape[0], device)
        prediction, v = split_output(model_fn(x, tt).float(), schedule)
        x0 = schedule.predict_x0(x, tt, prediction)
        mean = float(coef_x0[t]) * x0 + float(coef_xt[t]) * x
        if t > 0:
            std = (0.5 * schedule.model_log_variance(v, tt)).exp() if v is not None else \
                float(schedule.posterior_variance[t].sqrt())
            x = mean + std * _noise(shape, generator, device)
        else:
            x = mean
        if callback is not None:
            callback(i + 1, T)
    return x


@torch.no_grad()
def ddim_sample(model_fn: ModelFn, schedule: Schedule, shape: tuple[int, ...], generator: torch.Generator,
                device: torch.device, steps: int, eta: float = 0.0,
                callback: StepCallback | None = None) -> torch.Tensor:
    """DDIM (Song et al. 2021): η = 0 deterministic, η = 1 ancestral-like; any number of steps."""
    x = _noise(shape, generator, device)
    seq = spaced_timesteps(schedule.timesteps, steps)
    ab_table = schedule.alphas_cumprod
    for i, t in enumerate(seq):
        t_prev = seq[i + 1] if i + 1 < len(seq) else -1
        ab = float(ab_table[t])
        ab_prev = float(ab_table[t_prev]) if t_prev >= 0 else 1.0
        tt = _tvec(t, shape[0], device)
        x0 = schedule.predict_x0(x, tt, model_fn(x, tt).float())
        eps = schedule.eps_from_x0(x, tt, x0)
        sigma = eta * np.sqrt((1 - ab_prev) / (1 - ab)) * np.sqrt(max(0.0, 1 - ab / ab_prev))
        x = np.sqrt(ab_prev) * x0 + np.sqrt(max(0.0, 1 - ab_prev - sigma**2)) * eps
        if t_prev >= 0:
            z = _noise(shape, generator, device)
            if sigma > 0:
                x = x + sigma * z
        if callback is not None:
            callback(i + 1, len(seq))
    return x


@torch.no_grad()
def dpmpp_2m_sample(model_fn: ModelFn, schedule: Schedule, shape: tuple[int, ...], generator: torch.Generator,
                    device: torch.device, steps: int, callback: StepCallback | None = None) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022), data-prediction multistep solver; deterministic after x_T.

    First step first order (no previous x0 yet), then second order; the final step to the data
    is first order (lower-order final, as diffusers for few steps): x = x0 of the last evaluation.
    Evaluation times: `solver_timesteps` (none spent at t = 0).
    """
    x = _noise(shape, generator, device)
    seq = solver_timesteps(schedule.timesteps, steps)
    ab = schedule.alphas_cumprod
    alpha = [float(ab[t].sqrt()) for t in seq]
    sigma = [float((1 - ab[t]).sqrt()) for t in seq]
    lam = [np.log(a / s) for a, s in zip(alpha, sigma, strict=True)]
    prev_x0: torch.Tensor | None = None
    prev_h: float | None = None
    for i, t in enumerate(seq):
        tt = _tvec(t, shape[0], device)
        x0 = schedule.predict_x0(x, tt, model_fn(x, tt).float())
        if i + 1 == len(seq):
            x = x0  # last step: first order to the data (σ = 0, λ = ∞)
        else:
            h = lam[i + 1] - lam[i]
            if prev_x0 is None or prev_h is None:
                d = x0
            else:
                r = prev_h / h
                d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * prev_x0
            x = (sigma[i + 1] / sigma[i]) * x - alpha[i + 1] * np.expm1(-h) * d
            prev_x0, prev_h = x0, h
        if callback is not None:
            callback(i + 1, len(seq))
    return x


def run_sampler(model_fn: ModelFn, schedule: Schedule | RectifiedFlow, shape: tuple[int, ...], *, sampler: str,
                steps: int, eta: float, generator: torch.Generator, device: torch.device,
                callback: StepCallback | None = None) -> torch.Tensor:
    """Dispatch by name (`choices.SAMPLERS`); `steps` is ignored by `ddpm` (always T steps, as in the paper).

    `schedule` is the model's process (`processes.process_from_config`): the `rflow` sampler
    needs a `RectifiedFlow`, the others a DDPM `Schedule` (config_checks pairs them at load).
    DDIM and DPM-Solver++ set their own step variances, so they use only the prediction channel
    of a learned-variance model; DDPM uses the learned variance.
    """
    if (sampler == "rflow") != isinstance(schedule, RectifiedFlow):
        raise ValueError(f"sampler {sampler!r} does not fit the process {type(schedule).__name__}")
    if sampler == "rflow":
        return rflow_sample(model_fn, schedule, shape, generator, device, steps, callback)
    if sampler == "ddpm":
        return ddpm_sample(model_fn, schedule, shape, generator, device, callback)
    if schedule.learned_variance:
        full_fn = model_fn

        def model_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return full_fn(x, t)[:, :1]

    if sampler == "ddim":
        return ddim_sample(model_fn, schedule, shape, generator, device, steps, eta, callback)
    if sampler == "dpmpp":
        return dpmpp_2m_sample(model_fn, schedule, shape, generator, device, steps, callback)
    raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")   # configs are checked at load
