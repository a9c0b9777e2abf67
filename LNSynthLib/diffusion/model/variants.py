"""What each compared denoiser sees: the paper's LN-DDPM and the baselines of papers 000 and 002.

All variants share one backbone (`network.LNDenoiser`); a variant only decides
- the channels concatenated to x_t at the input (GSCond, "channel-wise concatenation"),
- the input of the separate guide encoder whose per-level features join the U-Net
  (mask-guided / edge-guided DDPM of paper 002), if any,
- whether the LDCond spatial transformers (paper 000 §3.4) are used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from LNSynthLib.diffusion.choices import LDCOND_VARIANTS
from LNSynthLib.diffusion.model.conditioning import body_mask, edge_map, one_hot_anatomy


@dataclass(frozen=True)
class VariantSpec:
    name: str
    input: tuple[str, ...]   # condition channels concatenated to x_t, in order
    guide: tuple[str, ...]   # condition channels of the guide encoder; () = no guide branch
    description: str

    @property
    def ldcond(self) -> bool:
        """LDCond spatial transformers with LN mask tokens (`choices.LDCOND_VARIANTS`); else plain self-attention."""
        return self.name in LDCOND_VARIANTS


VARIANT_SPECS: dict[str, VariantSpec] = {
    "ln_ddpm": VariantSpec("ln_ddpm", ("anatomy", "ln"), (),
                           "paper 000: GSCond (x_t + one-hot anatomy + LN) and LDCond on LN voxels"),
    "conditional": VariantSpec("conditional", ("anatomy", "ln"), (),
                               "paper 002 (a): channel-wise concatenation only"),
    "mask_guided": VariantSpec("mask_guided", (), ("anatomy", "ln"),
                               "paper 002 (b): conditions encoded by a separate U-Net-like encoder"),
    "edge_guided": VariantSpec("edge_guided", ("anatomy", "ln"), ("edge",),
                               "paper 002 (c): concatenation + semantic edge map through the guide encoder"),
    "gscond_ln_only": VariantSpec("gscond_ln_only", ("ln",), (),
                                  "paper 000 ablation: x_t + LN mask only"),
    "med_ddpm": VariantSpec("med_ddpm", ("ln", "body"), (),
                            "paper 000 baseline (Med-DDPM style): x_t + LN mask + body mask"),
}


def variant_spec(name: str) -> VariantSpec:
    if name not in VARIANT_SPECS:
        raise ValueError(f"unknown network.variant {name!r}; choose one of {', '.join(VARIANT_SPECS)}")
    return VARIANT_SPECS[name]


def condition_channels(names: tuple[str, ...], num_labels: int) -> int:
    """Number of channels the named conditions occupy."""
    return sum(num_labels if n == "anatomy" else 1 for n in names)


def build_conditions(names: tuple[str, ...], anatomy: torch.Tensor, ln: torch.Tensor, num_labels: int,
                     dtype: torch.dtype) -> list[torch.Tensor]:
    """The named condition tensors, each [B,C,D,H,W] in `dtype`, in the order given."""
    ln = ln.to(dtype)
    out: list[torch.Tensor] = []
    for name in names:
        if name == "anatomy":
            out.append(one_hot_anatomy(anatomy, num_labels, dtype))
        elif name == "ln":
            out.append(ln)
        elif name == "body":
            out.append(body_mask(anatomy, dtype))
        elif name == "edge":
            out.append(edge_map(anatomy, ln, dtype))
        else:
            raise ValueError(f"unknown condition {name!r}")
    return out
