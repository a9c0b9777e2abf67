"""Learned reverse variance and the hybrid loss L_simple + λ·L_vlb (paper 002, improved-diffusion).

With `diffusion.variance: learned_range` the network outputs two channels: the prediction
(ε or v, as `diffusion.prediction` says) and v ∈ [-1, 1] that interpolates the reverse
variance between β̃_t and β_t in log space (`Schedule.model_log_variance`). The training loss
is improved-diffusion's hybrid loss (Nichol & Dhariwal 2021, §3.1):

    L_hybrid = L_simple + λ·L_vlb,   L_vlb = Σ_t L_t ≈ T·E_t[L_t]

so one sampled timestep contributes λ·T·L_t (λ = 0.001 and T = 1000 give weight 1, exactly
improved-diffusion's `RESCALED_MSE` + `vb * T / 1000`). L_t is the KL between the true
posterior q(x_{t-1} | x_t, x0) and the model's p(x_{t-1} | x_t) in bits per voxel, and at t = 0
the negative discretized Gaussian log-likelihood of x0 (256 bins over [-1, 1], as
improved-diffusion; the CT is continuous in [-1, 1], so this is the usual 8-bit proxy). The
mean in L_vlb uses the prediction with its gradient stopped, so L_vlb trains only the variance.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from LNSynthLib.diffusion.config import LNDDPMConfig
    from LNSynthLib.diffusion.process.processes import NoiseProcess
    from LNSynthLib.diffusion.process.schedule import Schedule

BIN_HALF_WIDTH = 1.0 / 255.0   # half of one of 256 bins over [-1, 1]


def normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor,
              logvar2: torch.Tensor) -> torch.Tensor:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) element-wise, in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def approx_standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """Φ(x) by the tanh approximation improved-diffusion uses (error < 3e-4)."""
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def discretized_gaussian_log_likelihood(x: torch.Tensor, means: torch.Tensor,
                                        log_scales: torch.Tensor) -> torch.Tensor:
    """log P(x) of data in [-1, 1] under N(means, e^(2·log_scales)) integrated over x's bin (nats).

    The end bins reach to ±∞ (x < -0.999 and x > 0.999), so the probabilities of all bins sum to 1.
    """
    centred = x - means
    inv_std = torch.exp(-log_scales)
    cdf_plus = approx_standard_normal_cdf(inv_std * (centred + BIN_HALF_WIDTH))
    cdf_min = approx_standard_normal_cdf(inv_std * (centred - BIN_HALF_WIDTH))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_delta))


def split_output(output: torch.Tensor, schedule: NoiseProcess) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(prediction [B,1,...], variance channel v or None) of a network output."""
    if not schedule.learned_variance:
        return output, None
    if output.shape[1] != 2:
        raise ValueError(f"a learned-variance model outputs 2 channels, got {output.shape[1]}")
    return output[:, :1], output[:, 1:]


def vlb_terms(schedule: Schedule, prediction: torch.Tensor, v: torch.Tensor, x0: torch.Tensor,
              x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """L_t per sample [B] in bits per voxel: KL for t > 0, decoder NLL at t = 0."""
    x0_hat = schedule.predict_x0(x_t, t, prediction, clip=False)
    model_mean = schedule.posterior_mean(x0_hat, x_t, t)
    model_log_var = schedule.model_log_variance(v, t)
    true_mean = schedule.posterior_mean(x0, x_t, t)
    true_log_var = schedule.posterior_log_variance(t, x_t)
    kl = normal_kl(true_mean, true_log_var, model_mean, model_log_var).flatten(1).mean(1) / math.log(2.0)
    nll = -discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * model_log_var).flatten(1).mean(1)
    return torch.where(t == 0, nll / math.log(2.0), kl)


def diffusion_loss(output: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """L_simple: the l1 or l2 distance between what the network predicts and its target."""
    if kind == "l1":
        return F.l1_loss(output.float(), target)
    if kind in ("l2", "mse"):
        return F.mse_loss(output.float(), target)
    raise ValueError(f"diffusion.loss must be l1 or l2, got {kind!r}")   # configs are checked at load


def hybrid_loss(schedule: NoiseProcess, output: torch.Tensor, target: torch.Tensor, x0: torch.Tensor,
                x_t: torch.Tensor, t: torch.Tensor, kind: str, vlb_weight: float) -> torch.Tensor:
    """L_simple(prediction, target) + λ·T·mean_batch(L_t), with the mean's gradient stopped in L_t."""
    output = output.float()
    prediction, v = split_output(output, schedule)
    simple = diffusion_loss(prediction, target, kind)
    if v is None:
        return simple
    vlb = vlb_terms(schedule, prediction.detach(), v, x0.float(), x_t.float(), t)
    return simple + vlb_weight * schedule.timesteps * vlb.mean()


def training_loss(config: LNDDPMConfig, schedule: NoiseProcess, output: torch.Tensor, target: torch.Tensor,
                  x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The loss a config trains with: L_simple alone, or the hybrid loss for a learned variance."""
    d = config.diffusion
    return hybrid_loss(schedule, output, target, x0, x_t, t, d.loss, d.vlb_weight)
