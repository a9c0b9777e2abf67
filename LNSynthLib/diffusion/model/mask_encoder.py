"""Condition encoders: the LN mask encoder of LDCond (paper 000) and the guide encoder of paper 002.

- `LNMaskEncoder` (τθ in paper 000 eq. 8): "several convolution operations" that turn the LN
  mask into tokens for the cross-attention of the LDCond spatial transformers. Its stride-2
  convolutions bring the mask to the transformer's level, so each token describes the node
  shape around one cell of that level.
- `GuideEncoder` (mask-/edge-guided DDPM, paper 002 Fig. 2b/c): a U-Net-like encoder over the
  conditions whose feature map before each downsampling is concatenated to the main U-Net's
  encoder and decoder at the same level.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LNMaskEncoder(nn.Module):
    """LN mask [B,1,D,H,W] -> tokens [B, N, channels[-1]] at 1/2**levels of the input size."""

    def __init__(self, channels: tuple[int, ...], levels: int, in_channels: int = 1) -> None:
        super().__init__()
        if not channels:
            raise ValueError("network.mask_encoder_channels must name at least one stage")
        layers: list[nn.Module] = []
        prev = in_channels
        for i, ch in enumerate(channels):
            stride = 2 if i < levels else 1
            layers.append(nn.Conv3d(prev, ch, kernel_size=3, stride=stride, padding=1))
            if i < len(channels) - 1:
                layers.append(nn.SiLU())
            prev = ch
        self.net = nn.Sequential(*layers)
        # Stages beyond the configured convolutions are reached by pooling, so any
        # transformer level works with a short encoder.
        self.extra_pool = 2 ** max(0, levels - len(channels))
        self.out_channels = prev

    def forward(self, ln: torch.Tensor) -> torch.Tensor:
        h = self.net(ln)
        if self.extra_pool > 1:
            h = F.avg_pool3d(h, self.extra_pool)
        return h.flatten(2).transpose(1, 2)


def guide_channels(channels: tuple[int, ...], norm_groups: int) -> tuple[int, ...]:
    """Width of the guide features per level: half the main width, a multiple of the norm groups.

    The main U-Net normalises the concatenation with GroupNorm, so both parts must keep the
    channel count divisible by `norm_groups`.
    """
    return tuple(max(norm_groups, -(-(c // 2) // norm_groups) * norm_groups) for c in channels)


class GuideEncoder(nn.Module):
    """Conditions [B,C,D,H,W] -> one feature map per U-Net level (before each downsampling)."""

    def __init__(self, in_channels: int, channels: tuple[int, ...], norm_groups: int) -> None:
        super().__init__()
        self.out_channels = channels
        self.blocks = nn.ModuleList()
        self.downs = nn.ModuleList()
        prev = in_channels
        for i, ch in enumerate(channels):
            self.blocks.append(nn.Sequential(
                nn.Conv3d(prev, ch, kernel_size=3, padding=1), nn.GroupNorm(norm_groups, ch), nn.SiLU(),
                nn.Conv3d(ch, ch, kernel_size=3, padding=1), nn.GroupNorm(norm_groups, ch), nn.SiLU(),
            ))
            if i < len(channels) - 1:
                self.downs.append(nn.Conv3d(ch, ch, kernel_size=3, stride=2, padding=1))
            prev = ch

    def forward(self, cond: torch.Tensor) -> list[torch.Tensor]:
        feats: list[torch.Tensor] = []
        h = cond
        for i, block in enumerate(self.blocks):
            h = block(h)
            feats.append(h)
            if i < len(self.downs):
                h = self.downs[i](h)
        return feats
