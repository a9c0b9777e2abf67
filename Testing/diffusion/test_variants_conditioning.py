"""Condition helpers (one-hot anatomy, semantic edge map, body mask) and what each variant is fed."""

from __future__ import annotations

import pytest
import torch

from LNSynthLib.diffusion.config import load_config
from LNSynthLib.diffusion.model.conditioning import body_mask, edge_map, one_hot_anatomy
from LNSynthLib.diffusion.model.network import build_denoiser
from LNSynthLib.diffusion.model.variants import build_conditions, condition_channels, variant_spec


def test_one_hot_has_14_channels_summing_to_one() -> None:
    labels = torch.randint(0, 14, (2, 1, 6, 7, 8))
    onehot = one_hot_anatomy(labels, 14)
    assert onehot.shape == (2, 14, 6, 7, 8) and onehot.dtype == torch.float32
    assert torch.equal(onehot.sum(1), torch.ones(2, 6, 7, 8))
    assert torch.equal(onehot.argmax(1, keepdim=True), labels)
    # uint8 and float label maps (as read from NIfTI) give the same result
    assert torch.equal(one_hot_anatomy(labels.to(torch.uint8), 14), onehot)
    assert torch.equal(one_hot_anatomy(labels.float(), 14), onehot)


def test_one_hot_rejects_labels_outside_range() -> None:
    with pytest.raises(ValueError, match=r"0\.\.13"):
        one_hot_anatomy(torch.full((1, 1, 2, 2, 2), 14), 14)
    with pytest.raises(ValueError, match=r"\[B,1,D,H,W\]"):
        one_hot_anatomy(torch.zeros(2, 2, 2), 14)


def test_body_mask_is_everything_but_air() -> None:
    labels = torch.tensor([0, 1, 5, 0, 13]).view(1, 1, 1, 1, 5)
    assert body_mask(labels).flatten().tolist() == [0, 1, 1, 0, 1]


def test_edge_map_marks_label_and_node_boundaries() -> None:
    labels = torch.ones(1, 1, 12, 12, 12, dtype=torch.long)
    labels[:, :, 3:9, 3:9, 3:9] = 5            # an organ cube
    ln = torch.zeros(1, 1, 12, 12, 12)
    edges = edge_map(labels, ln)
    cube = torch.zeros(12, 12, 12, dtype=torch.bool)
    cube[3:9, 3:9, 3:9] = True
    inner = torch.zeros_like(cube)
    inner[4:8, 4:8, 4:8] = True
    grown = torch.zeros_like(cube)
    grown[2:10, 2:10, 2:10] = True
    e = edges[0, 0].bool()
    assert torch.equal(e, grown & ~inner), "edges are the voxels on both sides of the cube surface"
    assert not e[0].any() and not e[:, :, -1].any(), "the volume border alone is no edge"
    # A lymph node inside the organ is one more label: its outline becomes an edge too.
    ln[:, :, 5:7, 5:7, 5:7] = 1
    e2 = edge_map(labels, ln)[0, 0].bool()
    assert e2[5, 5, 5] and e2[4, 4, 4] and not e[5, 5, 5]
    assert torch.equal(e2 & ~inner, e & ~inner)


def test_uniform_volume_has_no_edges() -> None:
    assert edge_map(torch.full((1, 1, 5, 5, 5), 3), torch.zeros(1, 1, 5, 5, 5)).sum() == 0


@pytest.mark.parametrize("variant,main,guide", [
    ("ln_ddpm", 16, 0), ("conditional", 16, 0), ("mask_guided", 1, 15),
    ("edge_guided", 16, 1), ("gscond_ln_only", 2, 0), ("med_ddpm", 3, 0),
])
def test_variant_channels(variant: str, main: int, guide: int) -> None:
    spec = variant_spec(variant)
    assert 1 + condition_channels(spec.input, 14) == main
    assert condition_channels(spec.guide, 14) == guide
    model = build_denoiser(load_config("tiny", {"network.variant": variant}))
    assert model.conv_in.in_channels == main
    if guide:
        assert model.guide.blocks[0][0].in_channels == guide
    else:
        assert model.guide is None
    assert (model.mask_encoder is not None) == (variant == "ln_ddpm")


def test_build_conditions_order_and_values() -> None:
    labels = torch.randint(0, 14, (1, 1, 4, 4, 4))
    ln = (torch.rand(1, 1, 4, 4, 4) > 0.5).float()
    onehot, node, body = build_conditions(("anatomy", "ln", "body"), labels, ln, 14, torch.float32)
    assert torch.equal(onehot, one_hot_anatomy(labels, 14))
    assert torch.equal(node, ln) and torch.equal(body, body_mask(labels))
    with pytest.raises(ValueError, match="unknown network.variant"):
        variant_spec("ddpm_plus")
