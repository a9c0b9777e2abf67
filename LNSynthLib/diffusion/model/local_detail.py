"""LDCond: the spatial transformer of paper 000 §3.4 whose output joins the residual only on LN voxels.

MONAI's `SpatialTransformer` (self-attention, cross-attention to the LN mask tokens, GEGLU
feed-forward, zero-initialised output projection) is reused as is; what the paper changes is
how its output re-enters the U-Net. Three modes (paper 000 Table 5c):

- LD (local detail, the paper's choice): attention runs over all positions, but the
  transformer output is added through the residual only where the LN mask (resampled to this
  level) is set: `x + gate * branch(x)`. Everything else passes through unchanged.
- LA (local attention): the self-attention is restricted by an attention mask so that LN
  positions attend only to LN positions and every other position only to itself; the full
  output is added back.
- GA (global attention): the unmodified spatial transformer, `x + branch(x)`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from LNSynthLib.diffusion.choices import ATTENTION_MODES, LD_GATES
from LNSynthLib.diffusion.model.monai_parts import import_light

SpatialTransformer = import_light("monai.networks.nets.diffusion_model_unet")[0].SpatialTransformer

MODES = ATTENTION_MODES
GATE_RULES = LD_GATES


def ln_gate(ln: torch.Tensor, size: tuple[int, ...] | torch.Size, rule: str = "max") -> torch.Tensor:
    """LN mask [B,1,D,H,W] at a coarser level, by `network.ld_gate` (choices.LD_GATES); values in [0, 1].

    The paper does not say how the mask is downsampled. `max` (default): a cell is LN when any
    of its voxels is; keeps nodes smaller than a cell (a 5 mm node at 1/8 resolution) but also
    opens the perinodal fat of every touched cell. `fraction`: the share of LN voxels in the
    cell weights the residual (a cell half filled by a node gets half the transformer output).
    `nearest`: the voxel nearest each cell centre decides; tight, but drops nodes that miss
    every sampled voxel. All three are zero on cells without any LN voxel.
    """
    gate = (ln > 0.5).to(torch.float32)
    size = tuple(int(s) for s in size)
    if tuple(gate.shape[-3:]) == size:
        return gate
    if rule == "max":
        return F.adaptive_max_pool3d(gate, size)
    if rule == "fraction":
        return F.adaptive_avg_pool3d(gate, size)
    if rule == "nearest":
        return _cell_centres(gate, size)
    raise ValueError(f"network.ld_gate must be one of {GATE_RULES}, got {rule!r}")  # configs are checked at load


def _cell_centres(gate: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """The voxel at the centre of each cell (for even cells the one just past the middle)."""
    index = [((torch.arange(n) + 0.5) * (d / n)).long().clamp(max=d - 1)
             for n, d in zip(size, gate.shape[-3:], strict=True)]
    return gate[..., index[0][:, None, None], index[1][None, :, None], index[2][None, None, :]]


def local_attention_mask(gate: torch.Tensor) -> torch.Tensor:
    """Boolean SDPA mask [B,1,N,N] for LA mode: LN<->LN pairs and each position with itself.

    The diagonal keeps every query with at least one key, so rows outside the nodes (and
    patches without nodes) never become all-masked (which would give NaN).
    """
    flat = gate.flatten(1) > 0.5                                  # [B, N]
    pairs = flat[:, :, None] & flat[:, None, :]
    eye = torch.eye(flat.shape[1], dtype=torch.bool, device=flat.device)
    return (pairs | eye)[:, None]


class LDCondTransformer(SpatialTransformer):
    """Spatial transformer with cross-attention to LN mask tokens and a mode-dependent residual."""

    def __init__(self, channels: int, heads: int, head_dim: int, context_dim: int, norm_groups: int,
                 mode: str = "LD") -> None:
        if mode not in MODES:
            raise ValueError(f"network.attention_mode must be one of {MODES}, got {mode!r}")
        super().__init__(spatial_dims=3, in_channels=channels, num_attention_heads=heads,
                         num_head_channels=head_dim, num_layers=1, norm_num_groups=norm_groups,
                         cross_attention_dim=context_dim, use_flash_attention=True)
        self.mode = mode

    def branch(self, x: torch.Tensor, context: torch.Tensor,
               attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The transformer's contribution, i.e. what MONAI's forward adds to the residual."""
        batch, _, *spatial = x.shape
        h = self.proj_in(self.norm(x))
        inner = h.shape[1]
        h = self.tokens(h.flatten(2).transpose(1, 2), context, attn_mask)
        h = h.transpose(1, 2).reshape(batch, inner, *spatial)
        return self.proj_out(h)

    def tokens(self, h: torch.Tensor, context: torch.Tensor,
               attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Transformer blocks on tokens [B,N,C]: self-attention (masked in LA), cross-attention, FFN."""
        for block in self.transformer_blocks:
            h = block.attn1(block.norm1(h), attn_mask=attn_mask) + h
            h = block.attn2(block.norm2(h), context=context) + h
            h = block.ff(block.norm3(h)) + h
        return h

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,  # type: ignore[override]
                gate: torch.Tensor | None = None, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        if context is None:
            raise ValueError("LDCondTransformer needs the LN mask tokens as context")
        if self.mode == "GA":
            return x + self.branch(x, context)
        if gate is None:
            raise ValueError(f"LDCond mode {self.mode} needs the LN gate at this level")
        if self.mode == "LA":
            mask = attn_mask if attn_mask is not None else local_attention_mask(gate)
            return x + self.branch(x, context, mask)
        return x + gate.to(x.dtype) * self.branch(x, context)
