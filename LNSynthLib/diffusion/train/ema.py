"""Exponential moving average of the denoiser weights (paper: decay 0.995), used for sampling.

Paper 000 gives only the decay; the cadence is a config choice (`train.ema_every`,
`train.ema_start`, `train.ema_warmup`):
- After optimizer step n (n = 1, 2, ...) the average is touched when (n - 1) % ema_every == 0,
  i.e. Medical Diffusion's 0-based step counter is a multiple of `ema_every`.
- A touch with n - 1 < ema_start copies the raw weights (the average *is* the raw model until
  then); a later touch blends: ema = d * ema + (1 - d) * raw.
- d is the decay, or with `ema_warmup` min(decay, (1 + n) / (10 + n)) so that a short CPU run is
  not dominated by its random initial weights (0.995 from step 1790 on).
The `paper` config uses Medical Diffusion's trainer (every 10 steps from step 2000, no warm-up,
≈ 2000-step window); `tiny` averages every step with the warm-up (≈ 200-step window).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

COPY, BLEND = "copy", "blend"


class EMA:
    def __init__(self, model: nn.Module, decay: float = 0.995, warmup: bool = True, every: int = 1,
                 start: int = 0) -> None:
        self.decay = float(decay)
        self.warmup = warmup
        self.every = int(every)
        self.start = int(start)
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def current_decay(self, step: int) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + step) / (10 + step))

    def action(self, step: int) -> str | None:
        """What `update` does after optimizer step `step` (1-based): COPY, BLEND or nothing (None)."""
        counter = step - 1                       # Medical Diffusion counts optimizer steps from 0
        if counter % self.every:
            return None
        return COPY if counter < self.start else BLEND

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Copy or blend `model`'s parameters into the average per the cadence; buffers are copied as they are."""
        action = self.action(step)
        if action is None:
            return
        ema_params = dict(self.model.named_parameters())
        for name, p in model.named_parameters():
            if action == COPY:
                ema_params[name].copy_(p.detach())
            else:
                ema_params[name].lerp_(p.detach().to(ema_params[name].dtype), 1 - self.current_decay(step))
        ema_buffers = dict(self.model.named_buffers())
        for name, b in model.named_buffers():
            ema_buffers[name].copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
