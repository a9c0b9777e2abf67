"""Noise schedule and the exact algebra between x0, ε, v and x_t (improved-diffusion conventions).

Everything the samplers and the training loss need lives here so that the parameterisations
(ε-prediction as in the paper, v-prediction for fast CPU training) share one tested set of
formulas. Schedule tables are computed in float64 and indexed per sample; results are cast to
the dtype of the input tensor.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from LNSynthLib.diffusion.choices import PREDICTIONS, SCHEDULES, VARIANCES

if TYPE_CHECKING:
    from LNSynthLib.diffusion.config import LNDDPMConfig


def cosine_betas(timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Cosine schedule of Nichol & Dhariwal (2021): ᾱ(t) = cos²((t/T + s)/(1 + s)·π/2)."""
    def alpha_bar(t: float) -> float:
        return math.cos((t / timesteps + s) / (1 + s) * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar(i + 1) / alpha_bar(i), max_beta) for i in range(timesteps)]
    return torch.tensor(betas, dtype=torch.float64)


def linear_betas(timesteps: int) -> torch.Tensor:
    """Linear schedule of Ho et al. (2020), scaled so that any T keeps the same end points."""
    scale = 1000 / timesteps
    return torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)


class Schedule:
    """Forward process q(x_t | x0) and the conversions between predictions.

    `t` is a long tensor [B] of timesteps in 0..T-1 (t = 0 is the least noisy step).
    """

    def __init__(self, timesteps: int = 300, kind: str = "cosine", prediction: str = "epsilon",
                 variance: str = "fixed_small") -> None:
        # Configs are checked when loaded (config_checks); these guard direct calls only.
        if kind not in SCHEDULES:
            raise ValueError(f"diffusion.schedule must be one of {SCHEDULES}, got {kind!r}")
        if prediction not in PREDICTIONS:
            raise ValueError(f"diffusion.prediction must be one of {PREDICTIONS}, got {prediction!r}")
        if variance not in VARIANCES:
            raise ValueError(f"diffusion.variance must be one of {VARIANCES}, got {variance!r}")
        self.variance = variance
        self.timesteps = int(timesteps)
        self.kind = kind
        self.prediction = prediction
        self.betas = cosine_betas(self.timesteps) if kind == "cosine" else linear_betas(self.timesteps)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        self.alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        # Posterior q(x_{t-1} | x_t, x0) variance β̃_t (DDPM "fixed small").
        self.posterior_variance = self.betas * (1 - self.alphas_cumprod_prev) / (1 - self.alphas_cumprod)
        # log β̃_t with β̃_0 = 0 replaced by β̃_1 (improved-diffusion), the lower end of a learned variance.
        self.posterior_log_variance_clipped = torch.log(torch.cat([self.posterior_variance[1:2],
                                                                   self.posterior_variance[1:]]))
        self.posterior_mean_coef_x0 = self.betas * self.alphas_cumprod_prev.sqrt() / (1 - self.alphas_cumprod)
        self.posterior_mean_coef_xt = (1 - self.alphas_cumprod_prev) * self.alphas.sqrt() / (1 - self.alphas_cumprod)

    @property
    def learned_variance(self) -> bool:
        """True when the network outputs a second channel v that sets the reverse variance."""
        return self.variance == "learned_range"

    @classmethod
    def from_config(cls, config: LNDDPMConfig) -> Schedule:
        """The schedule of a model's config (`diffusion.timesteps`, `.schedule`, `.prediction`)."""
        d = config.diffusion
        return cls(d.timesteps, d.schedule, d.prediction, d.variance)

    # -- table lookup ------------------------------------------------------------------
    def _at(self, table: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """table[t] shaped [B,1,1,...] to broadcast against `like`."""
        values = table.to(like.device)[t.to(like.device)].to(like.dtype)
        return values.reshape(-1, *([1] * (like.dim() - 1)))

    def sqrt_ab(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return self._at(self.alphas_cumprod.sqrt(), t, like)

    def sqrt_1m_ab(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return self._at((1 - self.alphas_cumprod).sqrt(), t, like)

    # -- forward process -----------------------------------------------------------------
    def sample_timesteps(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n training timesteps, uniform over 0..T-1 (the draw of `RectifiedFlow.sample_timesteps` for DDPM)."""
        return torch.randint(0, self.timesteps, (n,), generator=generator)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = √ᾱ_t·x0 + √(1-ᾱ_t)·ε."""
        return self.sqrt_ab(t, x0) * x0 + self.sqrt_1m_ab(t, x0) * noise

    def posterior_mean(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Mean of q(x_{t-1} | x_t, x0)."""
        return self._at(self.posterior_mean_coef_x0, t, x_t) * x0 + self._at(self.posterior_mean_coef_xt, t, x_t) * x_t

    def posterior_log_variance(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """log β̃_t (clipped at t = 0), shaped to broadcast against `like`."""
        return self._at(self.posterior_log_variance_clipped, t, like)

    def model_log_variance(self, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Learned log variance (Nichol & Dhariwal 2021, eq. 15): v in [-1, 1] interpolates log β̃_t .. log β_t."""
        frac = (v + 1) / 2
        return frac * self._at(self.betas.log(), t, v) + (1 - frac) * self.posterior_log_variance(t, v)

    # -- conversions -----------------------------------------------------------------------
    def v_from(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """v = √ᾱ_t·ε - √(1-ᾱ_t)·x0 (Salimans & Ho, 2022)."""
        return self.sqrt_ab(t, x0) * noise - self.sqrt_1m_ab(t, x0) * x0

    def x0_from_eps(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return (x_t - self.sqrt_1m_ab(t, x_t) * eps) / self.sqrt_ab(t, x_t)

    def eps_from_x0(self, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return (x_t - self.sqrt_ab(t, x_t) * x0) / self.sqrt_1m_ab(t, x_t)

    def x0_from_v(self, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.sqrt_ab(t, x_t) * x_t - self.sqrt_1m_ab(t, x_t) * v

    def eps_from_v(self, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.sqrt_1m_ab(t, x_t) * x_t + self.sqrt_ab(t, x_t) * v

    def training_target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the network learns to output for this schedule's prediction type."""
        return noise if self.prediction == "epsilon" else self.v_from(x0, noise, t)

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, model_output: torch.Tensor,
                   clip: bool = True) -> torch.Tensor:
        """x0 estimate from the network output; clipped to the data range [-1, 1] by default."""
        if self.prediction == "epsilon":
            x0 = self.x0_from_eps(x_t, t, model_output)
        else:
            x0 = self.x0_from_v(x_t, t, model_output)
        return x0.clamp(-1, 1) if clip else x0
