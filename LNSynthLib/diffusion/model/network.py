"""The LN-DDPM denoiser (paper 000 Fig. 3) and its comparison variants, all on one 3D U-Net backbone.

`model = build_denoiser(config)`; `model(x_t, timesteps, anatomy, ln)` with x_t [B,1,D,H,W]
float, timesteps [B] long, anatomy [B,1,D,H,W] labels 0..13, ln [B,1,D,H,W] 0/1 returns the
prediction [B,1,D,H,W] ([B,2,...] with a learned variance, `vlb.py`). Every variant derives its conditions from (anatomy, ln) itself
(`variants.py`), so training and sampling code is variant-agnostic.

The backbone is MONAI's `DiffusionModelUNet` layout built from its own blocks (time-embedded
ResNet blocks, strided-conv downsampling, nearest upsampling + conv, zero-initialised output
conv, so an untrained model predicts 0). It is assembled here rather than used whole because the
paper inserts things MONAI's forward cannot carry: the LN gate of LDCond at one level, and the
guide-encoder features of paper 002 concatenated into encoder and decoder. Attention sits at the
level whose size is patch/`transformer_resolution_divisor` (16³ for 128³ patches): LDCond
spatial transformers for `ln_ddpm`, MONAI's plain self-attention block for the other variants.
`network.ldcond_placement` decides how many: `all` puts one after every res-block at that level
plus the middle block (LDM's convention; 2 encoder + 1 middle + 3 decoder for the paper config),
`middle` only the middle block ("the spatial transformer" of paper 000 §4.2.1, read literally).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from LNSynthLib.diffusion.config import LNDDPMConfig, NetworkConfig
from LNSynthLib.diffusion.model.local_detail import LDCondTransformer, ln_gate, local_attention_mask
from LNSynthLib.diffusion.model.mask_encoder import GuideEncoder, LNMaskEncoder, guide_channels
from LNSynthLib.diffusion.model.monai_parts import import_light
from LNSynthLib.diffusion.model.variants import build_conditions, condition_channels, variant_spec

_unet, _attention = import_light("monai.networks.nets.diffusion_model_unet", "monai.networks.blocks.spatialattention")
SpatialAttentionBlock = _attention.SpatialAttentionBlock
DiffusionUnetDownsample = _unet.DiffusionUnetDownsample
DiffusionUNetResnetBlock = _unet.DiffusionUNetResnetBlock
WrappedUpsample = _unet.WrappedUpsample
get_timestep_embedding = _unet.get_timestep_embedding
zero_module = _unet.zero_module


class GlobalSelfAttention(SpatialAttentionBlock):
    """MONAI's spatial self-attention (SDPA) with the call signature of the LDCond transformer."""

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,  # type: ignore[override]
                gate: torch.Tensor | None = None, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        del context, gate, attn_mask
        return super().forward(x)


def attention_level(net: NetworkConfig) -> int:
    """U-Net level index whose resolution is patch / transformer_resolution_divisor."""
    divisor = net.transformer_resolution_divisor
    level = int(round(math.log2(divisor))) if divisor > 0 else -1
    if divisor < 1 or 2 ** level != divisor or level >= len(net.channels):
        raise ValueError(f"network.transformer_resolution_divisor={divisor} must be a power of two below "
                         f"2**{len(net.channels)} (the U-Net has {len(net.channels)} levels)")
    return level


class LNDenoiser(nn.Module):
    """3D U-Net denoiser; the variant decides inputs, guide branch and LDCond (see `variants.py`)."""

    def __init__(self, net: NetworkConfig, out_channels: int = 1) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.spec = variant_spec(net.variant)
        self.num_labels = net.anatomy_labels
        self.channels = tuple(net.channels)
        self.gradient_checkpointing = net.gradient_checkpointing
        self.channels_last = net.channels_last
        self.attn_level = attention_level(net)
        self.attention_mode = net.attention_mode if self.spec.ldcond else None
        self.ld_gate = net.ld_gate
        self.placement = net.ldcond_placement if self.spec.ldcond else "all"
        if self.placement == "middle" and self.attn_level != len(net.channels) - 1:
            raise ValueError("network.ldcond_placement=middle needs the transformer at the deepest level "
                             f"(transformer_resolution_divisor = 2**{len(net.channels) - 1})")
        ch, groups, levels = self.channels, net.norm_groups, len(net.channels)
        if any(c % groups for c in ch):
            raise ValueError(f"network.channels {ch} must all be multiples of network.norm_groups={groups}")

        guide = guide_channels(ch, groups) if self.spec.guide else (0,) * levels
        self.guide = (GuideEncoder(condition_channels(self.spec.guide, self.num_labels), guide, groups)
                      if self.spec.guide else None)
        self.mask_encoder = (LNMaskEncoder(tuple(net.mask_encoder_channels), self.attn_level)
                             if self.spec.ldcond else None)

        every_block = self.placement == "all"

        def attention() -> nn.Module:
            c = ch[self.attn_level]
            if self.mask_encoder is not None:
                return LDCondTransformer(c, net.transformer_heads, net.transformer_head_dim,
                                         self.mask_encoder.out_channels, groups, net.attention_mode)
            return GlobalSelfAttention(3, c, num_head_channels=net.transformer_head_dim,
                                       norm_num_groups=groups, use_flash_attention=True)

        def resnet(cin: int, cout: int) -> DiffusionUNetResnetBlock:
            return DiffusionUNetResnetBlock(3, cin, time_dim, cout, norm_num_groups=groups)

        time_dim = ch[0] * 4
        self.time_embed = nn.Sequential(nn.Linear(ch[0], time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.conv_in = nn.Conv3d(1 + condition_channels(self.spec.input, self.num_labels), ch[0], 3, padding=1)

        skips = [ch[0]]
        prev = ch[0]
        self.down_res, self.down_attn, self.downsample = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for level in range(levels):
            res, att = nn.ModuleList(), nn.ModuleList()
            for j in range(net.res_blocks):
                res.append(resnet((prev if j == 0 else ch[level]) + (guide[level] if j == 0 else 0), ch[level]))
                att.append(attention() if level == self.attn_level and every_block else nn.Identity())
                skips.append(ch[level])
            prev = ch[level]
            self.down_res.append(res)
            self.down_attn.append(att)
            if level < levels - 1:
                self.downsample.append(DiffusionUnetDownsample(3, prev, use_conv=True))
                skips.append(prev)

        self.mid_res1 = resnet(prev, prev)
        self.mid_attn = attention() if self.attn_level == levels - 1 else nn.Identity()
        self.mid_res2 = resnet(prev, prev)

        self.up_res, self.up_attn, self.upsample = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for level in reversed(range(levels)):
            res, att = nn.ModuleList(), nn.ModuleList()
            for j in range(net.res_blocks + 1):
                cin = prev + skips.pop() + (guide[level] if j == 0 else 0)
                res.append(resnet(cin, ch[level]))
                att.append(attention() if level == self.attn_level and every_block else nn.Identity())
                prev = ch[level]
            self.up_res.append(res)
            self.up_attn.append(att)
            if level > 0:
                post = nn.Conv3d(prev, prev, 3, padding=1)
                self.upsample.append(WrappedUpsample(3, mode="nontrainable", in_channels=prev, out_channels=prev,
                                                     interp_mode="nearest", scale_factor=2.0, post_conv=post,
                                                     align_corners=None))

        self.out = nn.Sequential(nn.GroupNorm(groups, ch[0], eps=1e-6), nn.SiLU(),
                                 zero_module(nn.Conv3d(ch[0], out_channels, 3, padding=1)))

    # -- helpers -------------------------------------------------------------------------------
    def _call(self, module: nn.Module, *args: Any) -> torch.Tensor:
        """Run a block, recomputing it in backward when gradient checkpointing is on."""
        if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(module, *args, use_reentrant=False)
        return module(*args)

    def _attend(self, module: nn.Module, h: torch.Tensor, state: dict[str, Any]) -> torch.Tensor:
        if isinstance(module, nn.Identity):
            return h
        return self._call(module, h, state["context"], state["gate"], state["attn_mask"])

    def _check(self, x_t: torch.Tensor, timesteps: torch.Tensor, anatomy: torch.Tensor, ln: torch.Tensor) -> None:
        if x_t.ndim != 5 or x_t.shape[1] != 1:
            raise ValueError(f"x_t must be [B,1,D,H,W], got {tuple(x_t.shape)}")
        for name, t in (("anatomy", anatomy), ("ln", ln)):
            if tuple(t.shape) != tuple(x_t.shape):
                raise ValueError(f"{name} must have the shape of x_t {tuple(x_t.shape)}, got {tuple(t.shape)}")
        if timesteps.ndim != 1 or timesteps.shape[0] != x_t.shape[0]:
            raise ValueError(f"timesteps must be [B]={x_t.shape[0]}, got {tuple(timesteps.shape)}")
        step = 2 ** (len(self.channels) - 1)
        if any(s % step for s in x_t.shape[2:]):
            raise ValueError(f"spatial size {tuple(x_t.shape[2:])} must be divisible by {step}")

    # -- forward -------------------------------------------------------------------------------
    def forward(self, x_t: torch.Tensor, timesteps: torch.Tensor, anatomy: torch.Tensor,
                ln: torch.Tensor) -> torch.Tensor:
        self._check(x_t, timesteps, anatomy, ln)
        dtype = x_t.dtype
        ln = ln.to(dtype)
        h = torch.cat([x_t, *build_conditions(self.spec.input, anatomy, ln, self.num_labels, dtype)], dim=1)
        guide: list[torch.Tensor | None] = [None] * len(self.channels)
        if self.guide is not None:
            cond = torch.cat(build_conditions(self.spec.guide, anatomy, ln, self.num_labels, dtype), dim=1)
            guide = list(self._call(self.guide, cond))
        state: dict[str, Any] = {"context": None, "gate": None, "attn_mask": None}
        if self.mask_encoder is not None:
            state["context"] = self._call(self.mask_encoder, ln)
            level_size = [s // 2 ** self.attn_level for s in x_t.shape[2:]]
            state["gate"] = ln_gate(ln, level_size, self.ld_gate)
            if self.attention_mode == "LA":
                state["attn_mask"] = local_attention_mask(state["gate"])
        if self.channels_last:
            h = h.contiguous(memory_format=torch.channels_last_3d)

        emb = self.time_embed(get_timestep_embedding(timesteps, self.channels[0]).to(dtype))
        h = self.conv_in(h)
        skips = [h]
        for level, (res, att) in enumerate(zip(self.down_res, self.down_attn, strict=True)):
            for j, (block, attn) in enumerate(zip(res, att, strict=True)):
                if j == 0 and guide[level] is not None:
                    h = torch.cat([h, guide[level]], dim=1)
                h = self._attend(attn, self._call(block, h, emb), state)
                skips.append(h)
            if level < len(self.downsample):
                h = self._call(self.downsample[level], h)
                skips.append(h)

        h = self._call(self.mid_res1, h, emb)
        h = self._attend(self.mid_attn, h, state)
        h = self._call(self.mid_res2, h, emb)

        for i, (res, att) in enumerate(zip(self.up_res, self.up_attn, strict=True)):
            level = len(self.channels) - 1 - i
            for j, (block, attn) in enumerate(zip(res, att, strict=True)):
                h = torch.cat([h, skips.pop()], dim=1)
                if j == 0 and guide[level] is not None:
                    h = torch.cat([h, guide[level]], dim=1)
                h = self._attend(attn, self._call(block, h, emb), state)
            if i < len(self.upsample):
                h = self._call(self.upsample[i], h)
        return self.out(h)


def build_denoiser(config: LNDDPMConfig | NetworkConfig) -> LNDenoiser:
    """The denoiser a config describes (`config.network`), on the CPU in fp32.

    A learned-variance config (`diffusion.variance: learned_range`) gets a second output channel.
    """
    net = config.network if isinstance(config, LNDDPMConfig) else config
    learned = isinstance(config, LNDDPMConfig) and config.diffusion.variance == "learned_range"
    model = LNDenoiser(net, out_channels=2 if learned else 1)
    if net.channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    return model


def describe_denoiser(model: LNDenoiser) -> dict[str, Any]:
    """Short facts for logs, reports and benchmarks."""
    return {
        "variant": model.spec.name,
        "description": model.spec.description,
        "parameters": sum(p.numel() for p in model.parameters()),
        "channels": list(model.channels),
        "attention_level": model.attn_level,
        "attention_mode": model.attention_mode,
        "ld_gate": model.ld_gate if model.attention_mode else None,
        "ldcond_placement": model.placement if model.attention_mode else None,
        "transformers": sum(isinstance(m, (LDCondTransformer, GlobalSelfAttention)) for m in model.modules()),
    }
