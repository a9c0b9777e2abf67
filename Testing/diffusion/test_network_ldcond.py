"""LDCond properties: LN-only residual (LD), attention masked to LN (LA), plain global attention (GA)."""

from __future__ import annotations

import pytest
import torch

from LNSynthLib.diffusion.model.local_detail import LDCondTransformer, ln_gate, local_attention_mask

from .conftest import ldcond_model, transformer_deltas

pytestmark = pytest.mark.usefixtures("one_thread")


def inputs(size: int = 32) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, size, size, size, generator=g)
    t = torch.tensor([100])
    anatomy = torch.randint(0, 14, (1, 1, size, size, size), generator=g)
    ln = torch.zeros(1, 1, size, size, size)
    ln[:, :, 3:9, 5:10, 20:27] = 1.0   # one node, away from the centre
    return x, t, anatomy, ln


def model_for(mode: str, seed: int = 1) -> torch.nn.Module:
    return ldcond_model({"network.attention_mode": mode}, seed)


def test_gate_keeps_small_nodes() -> None:
    ln = torch.zeros(1, 1, 32, 32, 32)
    ln[0, 0, 17, 9, 30] = 1.0               # a single voxel
    gate = ln_gate(ln, (8, 8, 8))
    assert gate.sum() == 1 and gate[0, 0, 4, 2, 7] == 1


def test_ld_residual_changes_only_ln_cells() -> None:
    model = model_for("LD")
    args = inputs()
    gate = ln_gate(args[3], (8, 8, 8))      # tiny: transformer at patch/4
    deltas = transformer_deltas(model, args)
    assert len(deltas) == 1 + 1 + 2          # down (1 res block), mid, up (2 res blocks)
    for delta in deltas:
        outside = delta * (1 - gate)
        inside = delta * gate
        assert torch.count_nonzero(outside) == 0, "LD must leave every non-LN cell untouched"
        assert inside.abs().amax() > 1e-4, "the transformer must contribute on LN cells"


def test_ga_residual_is_global_and_differs_from_ld() -> None:
    args = inputs()
    gate = ln_gate(args[3], (8, 8, 8))
    ga, ld = model_for("GA"), model_for("LD")
    ld.load_state_dict(ga.state_dict())
    for delta in transformer_deltas(ga, args):
        assert (delta * (1 - gate)).abs().amax() > 1e-4
    with torch.no_grad():
        out_ga, out_ld = ga(*args), ld(*args)
    far = torch.ones_like(args[3], dtype=torch.bool)
    far[:, :, :16, :16, 16:] = False          # voxels well away from the node
    assert not torch.allclose(out_ga[far], out_ld[far], atol=1e-6)


def test_ld_without_nodes_equals_network_without_transformer() -> None:
    x, t, anatomy, ln = inputs()
    empty = torch.zeros_like(ln)
    ld = model_for("LD")
    cut = model_for("LD")
    with torch.no_grad():
        for m in cut.modules():
            if isinstance(m, LDCondTransformer):
                m.proj_out.conv.weight.zero_()
                m.proj_out.conv.bias.zero_()
        assert torch.equal(ld(x, t, anatomy, empty), cut(x, t, anatomy, empty))
        # ... while with a node the transformer changes the prediction.
        assert not torch.allclose(ld(x, t, anatomy, ln), cut(x, t, anatomy, ln))
    ga = model_for("GA")
    with torch.no_grad():
        assert not torch.allclose(ga(x, t, anatomy, empty), cut(x, t, anatomy, empty))


def small_transformer() -> LDCondTransformer:
    torch.manual_seed(0)
    return LDCondTransformer(channels=16, heads=2, head_dim=8, context_dim=8, norm_groups=4, mode="LA").eval()


def test_local_attention_mask_shape_and_rows() -> None:
    gate = torch.zeros(2, 1, 4, 4, 4)
    gate[0, 0, 1:3, 1:3, 1:3] = 1
    mask = local_attention_mask(gate)
    assert mask.shape == (2, 1, 64, 64) and mask.dtype == torch.bool
    assert mask.any(dim=-1).all(), "no query may be left without keys"
    assert torch.equal(mask[1, 0], torch.eye(64, dtype=torch.bool))  # no nodes: each token itself
    ln_idx = gate[0].flatten().nonzero().flatten()
    assert mask[0, 0][ln_idx][:, ln_idx].all() and mask[0, 0, ln_idx].sum() == len(ln_idx) ** 2


def test_la_attention_is_restricted_to_ln_tokens() -> None:
    tr = small_transformer()
    gate = torch.zeros(1, 1, 4, 4, 4)
    gate[0, 0, 1:3, 1:3, 1:3] = 1
    flat = gate.flatten().bool()
    outside, inside = int((~flat).nonzero()[0]), int(flat.nonzero()[0])
    g = torch.Generator().manual_seed(3)
    tokens = torch.randn(1, 64, 16, generator=g)
    context = torch.randn(1, 64, 8, generator=g)
    mask = local_attention_mask(gate)
    poke = 3.0 * torch.randn(16, generator=g)  # not a constant shift, which LayerNorm would remove
    with torch.no_grad():
        base = tr.tokens(tokens, context, mask)
        poke_out = tokens.clone()
        poke_out[0, outside] += poke
        moved = tr.tokens(poke_out, context, mask)
        changed = (moved - base).abs().amax(-1)[0] > 1e-6
        assert changed.nonzero().flatten().tolist() == [outside], "LN tokens must not attend to non-LN ones"
        poke_in = tokens.clone()
        poke_in[0, inside] += poke
        changed = (tr.tokens(poke_in, context, mask) - base).abs().amax(-1)[0] > 1e-6
        assert changed[flat].all() and not changed[~flat].any(), "non-LN tokens must not attend to LN ones"
        # Without the mask (GA) the same poke reaches every token: the mask is what restricts.
        free = tr.tokens(poke_out, context) - tr.tokens(tokens, context)
        assert (free.abs().amax(-1)[0] > 1e-6).all()


def test_la_network_matches_masked_transformer() -> None:
    args = inputs()
    la = model_for("LA")
    deltas = transformer_deltas(la, args)
    assert all(torch.isfinite(d).all() for d in deltas)
    ga = model_for("GA")
    ga.load_state_dict(la.state_dict())
    with torch.no_grad():
        assert not torch.allclose(la(*args), ga(*args))
