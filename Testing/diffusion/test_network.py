"""The denoiser of every variant: shapes, zero output when untrained, finite gradients, options."""

from __future__ import annotations

import pytest
import torch

from LNSynthLib.diffusion.config import VARIANTS, load_config
from LNSynthLib.diffusion.model.network import build_denoiser, describe_denoiser
from LNSynthLib.diffusion.model.variants import VARIANT_SPECS

pytestmark = pytest.mark.usefixtures("one_thread")


def batch(size: int = 16, b: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 1, size, size, size, generator=g)
    t = torch.randint(0, 300, (b,), generator=g)
    anatomy = torch.randint(0, 14, (b, 1, size, size, size), generator=g)
    ln = torch.zeros(b, 1, size, size, size)
    ln[:, :, 2:6, 3:7, 4:9] = 1.0
    return x, t, anatomy, ln


def wake_zero_init(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Give the zero-initialised layers (output conv, ResNet conv2, transformer proj_out) weights."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model


def test_variant_table_matches_config() -> None:
    assert set(VARIANT_SPECS) == set(VARIANTS)


@pytest.mark.parametrize("variant,mode", [(v, "LD") for v in VARIANTS] + [("ln_ddpm", "LA"), ("ln_ddpm", "GA")])
def test_every_variant_forward_backward(variant: str, mode: str) -> None:
    torch.manual_seed(0)
    cfg = load_config("tiny", {"network.variant": variant, "network.attention_mode": mode})
    model = build_denoiser(cfg)
    x, t, anatomy, ln = batch()
    out = model(x, t, anatomy, ln)
    assert out.shape == x.shape
    # MONAI's zero-initialised output conv: an untrained denoiser predicts exactly 0.
    assert torch.count_nonzero(out) == 0
    loss = (out - torch.randn_like(out)).abs().mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert model.out[-1].weight.grad.abs().sum() > 0
    # With weights everywhere, the output depends on the conditions the variant declares.
    wake_zero_init(model)
    model.zero_grad()
    out = model(x, t, anatomy, ln)
    assert torch.isfinite(out).all() and out.abs().max() > 0
    out.square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    with torch.no_grad():
        moved = model(x, t, anatomy, torch.roll(ln, 5, dims=-1))
    assert not torch.allclose(moved, out.detach()), "the LN mask must influence every variant"


@pytest.mark.parametrize("variant", ["conditional", "mask_guided", "med_ddpm"])
def test_anatomy_dependence_follows_the_variant(variant: str) -> None:
    torch.manual_seed(0)
    model = wake_zero_init(build_denoiser(load_config("tiny", {"network.variant": variant}))).eval()
    x, t, anatomy, ln = batch()
    other = torch.where(anatomy > 0, anatomy % 13 + 1, anatomy)  # same body outline, other organs
    with torch.no_grad():
        changed = not torch.allclose(model(x, t, anatomy, ln), model(x, t, other, ln))
    assert changed == (variant != "med_ddpm")  # Med-DDPM sees only the body outline


def test_input_checks() -> None:
    model = build_denoiser(load_config("tiny"))
    x, t, anatomy, ln = batch()
    with pytest.raises(ValueError, match="divisible"):
        model(x[..., :14], t, anatomy[..., :14], ln[..., :14])
    with pytest.raises(ValueError, match="anatomy"):
        model(x, t, anatomy[:, :, :8], ln)
    with pytest.raises(ValueError, match="labels"):
        model(x, t, anatomy + 20, ln)


def test_gradient_checkpointing_gives_same_gradients() -> None:
    torch.manual_seed(0)
    plain = wake_zero_init(build_denoiser(load_config("tiny")))
    ckpt = build_denoiser(load_config("tiny", {"network.gradient_checkpointing": True}))
    ckpt.load_state_dict(plain.state_dict())
    x, t, anatomy, ln = batch()
    for model in (plain, ckpt):
        model.train()
        model(x, t, anatomy, ln).square().mean().backward()
    for (name, p), q in zip(plain.named_parameters(), ckpt.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6), name


def test_channels_last_matches() -> None:
    torch.manual_seed(0)
    plain = wake_zero_init(build_denoiser(load_config("tiny", {"network.channels_last": False}))).eval()
    cl = build_denoiser(load_config("tiny", {"network.channels_last": True})).eval()
    assert cl.conv_in.weight.is_contiguous(memory_format=torch.channels_last_3d)
    cl.load_state_dict(plain.state_dict())
    x, t, anatomy, ln = batch()
    with torch.no_grad():
        assert torch.allclose(plain(x, t, anatomy, ln), cl(x, t, anatomy, ln), atol=1e-5)


def test_paper_network_builds_and_runs() -> None:
    cfg = load_config("paper")
    assert cfg.train.patch_size == (128, 128, 128)
    model = build_denoiser(cfg)
    info = describe_denoiser(model)
    print(f"paper LN-DDPM denoiser: {info['parameters'] / 1e6:.1f} M parameters")
    assert 50e6 < info["parameters"] < 100e6
    # The transformer sits at patch/8 (16³ for 128³): level 3 of 64/128/256/256.
    assert info["attention_level"] == 3 and info["attention_mode"] == "LD"
    x, t, anatomy, ln = batch(size=16, b=1)
    with torch.no_grad():
        out = model.eval()(x, t, anatomy, ln)
    assert out.shape == x.shape and torch.count_nonzero(out) == 0


@pytest.mark.slow
def test_paper_network_forward_32() -> None:
    model = wake_zero_init(build_denoiser(load_config("paper"))).eval()
    x, t, anatomy, ln = batch(size=32, b=1)
    with torch.no_grad():
        out = model(x, t, anatomy, ln)
    assert out.shape == x.shape and torch.isfinite(out).all()
