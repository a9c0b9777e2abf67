"""Condition tensors derived from the anatomy label map and the LN mask, computed on the fly.

The denoiser receives only the raw label map and LN mask (`model(x_t, t, anatomy, ln)`), so every
variant derives its own inputs here, on the same device as the batch; training and sampling code
never needs to know which conditions a variant uses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from LNSynthLib.anatomy.groups import AIR


def one_hot_anatomy(anatomy: torch.Tensor, num_labels: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """[B,1,D,H,W] integer labels 0..num_labels-1 -> [B,num_labels,D,H,W] one-hot (paper 000 eq. 6)."""
    labels = _labels(anatomy)
    # Meta tensors (FLOP counting without computation) carry no values to check, and a
    # compiled graph should not break on a host sync.
    checkable = labels.numel() and labels.device.type != "meta" and not torch.compiler.is_compiling()
    low, high = (int(v) for v in torch.aminmax(labels)) if checkable else (0, 0)
    if low < 0 or high >= num_labels:
        raise ValueError(f"anatomy labels must lie in 0..{num_labels - 1}, got {low}..{high}; "
                         "prepare the case with the 14-label grouping")
    onehot = F.one_hot(labels[:, 0], num_labels)            # [B,D,H,W,L]
    return onehot.permute(0, 4, 1, 2, 3).to(dtype)


def body_mask(anatomy: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Body outline for the Med-DDPM-style variant: every voxel not labelled air."""
    return (_labels(anatomy) != AIR).to(dtype)


def edge_map(anatomy: torch.Tensor, ln: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Semantic edge map (paper 002): 1 where a voxel's 3x3x3 neighbourhood holds another label.

    Lymph nodes count as one more label (-1) on top of the anatomy map, so node outlines are edges
    too. The volume border is padded by replication, so it never counts as an edge by itself.
    """
    labels = _labels(anatomy).to(torch.float32)
    combined = torch.where(ln.to(labels.device) > 0.5, torch.full_like(labels, -1.0), labels)
    padded = F.pad(combined, (1, 1, 1, 1, 1, 1), mode="replicate")
    high = F.max_pool3d(padded, kernel_size=3, stride=1)
    low = -F.max_pool3d(-padded, kernel_size=3, stride=1)
    return (high != low).to(dtype)


def _labels(anatomy: torch.Tensor) -> torch.Tensor:
    if anatomy.ndim != 5 or anatomy.shape[1] != 1:
        raise ValueError(f"anatomy must be a [B,1,D,H,W] label map, got shape {tuple(anatomy.shape)}")
    if anatomy.is_floating_point():
        anatomy = anatomy.round()
    return anatomy.long()
