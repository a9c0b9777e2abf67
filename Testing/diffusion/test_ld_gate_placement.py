"""LD gate rules (`network.ld_gate`) and LDCond transformer placement (`network.ldcond_placement`)."""

from __future__ import annotations

import pytest
import torch

from LNSynthLib.diffusion.choices import LD_GATES
from LNSynthLib.diffusion.config import load_config
from LNSynthLib.diffusion.model.local_detail import LDCondTransformer, ln_gate
from LNSynthLib.diffusion.model.network import build_denoiser, describe_denoiser
from LNSynthLib.errors import ConfigError

from .conftest import ldcond_model, transformer_deltas

pytestmark = pytest.mark.usefixtures("one_thread")
# Paper-shaped layout (4 levels, transformer at patch/8, 2 res-blocks) at a CPU width.
PAPER_SHAPED = {"network.channels": [8, 16, 16, 16], "network.res_blocks": 2, "network.norm_groups": 8,
                "network.transformer_resolution_divisor": 8}


def inputs(size: int = 32) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, size, size, size, generator=g)
    anatomy = torch.randint(0, 14, (1, 1, size, size, size), generator=g)
    ln = torch.zeros(1, 1, size, size, size)
    ln[:, :, 3:9, 5:10, 20:27] = 1.0     # a node over several cells, partly filling them
    ln[:, :, 17, 29, 1] = 1.0            # a one-voxel node away from any cell centre
    return x, torch.tensor([100]), anatomy, ln


def model_for(overrides: dict[str, object]) -> torch.nn.Module:
    return ldcond_model(overrides)


def test_gate_rules_on_hand_computed_cells() -> None:
    ln = torch.zeros(1, 1, 16, 16, 16)     # cells of 4³ voxels at 4³ resolution
    ln[0, 0, 5:7, 5:7, 5:7] = 1            # 8 voxels in cell (1,1,1), covering its centre voxel (6,6,6)
    ln[0, 0, 0, 0, 0] = 1                  # 1 voxel in cell (0,0,0), not its centre voxel (2,2,2)
    gates = {rule: ln_gate(ln, (4, 4, 4), rule)[0, 0] for rule in LD_GATES}
    assert gates["max"][1, 1, 1] == 1 and gates["max"][0, 0, 0] == 1 and gates["max"].sum() == 2
    assert gates["fraction"][1, 1, 1] == pytest.approx(8 / 64) and gates["fraction"][0, 0, 0] == pytest.approx(1 / 64)
    assert gates["fraction"].sum() == pytest.approx(9 / 64)
    assert gates["nearest"][1, 1, 1] == 1 and gates["nearest"].sum() == 1   # the small node is dropped
    with pytest.raises(ValueError, match="ld_gate"):
        ln_gate(ln, (4, 4, 4), "mean")


@pytest.mark.parametrize("rule", LD_GATES)
def test_every_gate_rule_keeps_the_residual_local(rule: str) -> None:
    args = inputs()
    gate = ln_gate(args[3], (8, 8, 8), rule)
    support = ln_gate(args[3], (8, 8, 8), "max") > 0
    assert bool((gate[~support] == 0).all()), "no rule opens a cell without LN voxels"
    deltas = transformer_deltas(model_for({"network.ld_gate": rule}), args)
    assert len(deltas) == 4
    for delta in deltas:
        assert torch.count_nonzero(delta * (gate == 0)) == 0, f"{rule}: the residual leaves closed cells untouched"
        assert (delta * gate).abs().amax() > 1e-4


def test_fraction_gate_scales_the_max_gate_residual_by_the_ln_share() -> None:
    args = inputs()
    share = ln_gate(args[3], (8, 8, 8), "fraction")
    assert 0 < float(share[share > 0].min()) < 1, "the node fills some cells only partly"
    first_max = transformer_deltas(model_for({"network.ld_gate": "max"}), args)[0]
    first_frac = transformer_deltas(model_for({"network.ld_gate": "fraction"}), args)[0]
    # The first transformer sees the same input in both models: fraction = share * (max-gated branch).
    assert torch.allclose(first_frac, share * first_max, atol=1e-6)
    assert not torch.allclose(first_frac, first_max, atol=1e-4)


@pytest.mark.parametrize(("placement", "count"), [("all", 2 + 1 + 3), ("middle", 1)])
def test_placement_module_count_and_forward(placement: str, count: int) -> None:
    config = load_config("tiny", {**PAPER_SHAPED, "network.ldcond_placement": placement})
    model = build_denoiser(config).eval()
    transformers = [m for m in model.modules() if isinstance(m, LDCondTransformer)]
    assert len(transformers) == count and describe_denoiser(model)["transformers"] == count
    if placement == "middle":
        assert model.mid_attn is transformers[0]
    x, t, anatomy, ln = inputs()
    with torch.no_grad():
        out = model(x, t, anatomy, ln)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_middle_placement_needs_the_deepest_level() -> None:
    with pytest.raises(ConfigError, match="ldcond_placement"):
        load_config("tiny", {**PAPER_SHAPED, "network.transformer_resolution_divisor": 4,
                             "network.ldcond_placement": "middle"})
    with pytest.raises(ConfigError, match="allowed values"):
        load_config("tiny", {"network.ld_gate": "mean"})
