"""Exponential moving average of the denoiser weights (paper: decay 0.995), used for sampling.

The decay warms up as min(decay, (1 + step) / (10 + step)) so that a short run (minutes on a
CPU) is not dominated by its random initial weights; after ~2000 steps this is the plain
0.995 average of the paper.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float = 0.995, warmup: bool = True) -> None:
        self.decay = float(decay)
        self.warmup = warmup
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def current_decay(self, step: int) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Blend `model`'s parameters into the average; buffers are copied as they are."""
        d = self.current_decay(step)
        ema_params = dict(self.model.named_parameters())
        for name, p in model.named_parameters():
            ema_params[name].lerp_(p.detach().to(ema_params[name].dtype), 1 - d)
        ema_buffers = dict(self.model.named_buffers())
        for name, b in model.named_buffers():
            ema_buffers[name].copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
