"""Schedule maths: monotone ᾱ, exact round trips between x0, ε, v and x_t."""

from __future__ import annotations

import pytest
import torch

from LNSynthLib.diffusion.process.schedule import Schedule


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_alphas_cumprod_monotone_and_bounded(kind: str) -> None:
    s = Schedule(300, kind)
    ab = s.alphas_cumprod
    assert ab.shape == (300,)
    assert torch.all(ab[1:] < ab[:-1])
    assert 0.99 < ab[0] < 1.0 and 0 < ab[-1] < 0.01
    assert torch.all((s.betas > 0) & (s.betas <= 0.999))
    assert torch.all(s.posterior_variance <= s.betas + 1e-12)


def test_cosine_matches_closed_form() -> None:
    s = Schedule(300, "cosine")
    import math

    f = [math.cos((t / 300 + 0.008) / 1.008 * math.pi / 2) ** 2 for t in range(301)]
    expected = torch.tensor([f[t + 1] / f[0] for t in range(300)], dtype=torch.float64)
    assert torch.allclose(s.alphas_cumprod[:-1], expected[:-1], rtol=1e-10)


@pytest.mark.parametrize("prediction", ["epsilon", "v"])
def test_round_trips_are_exact(prediction: str) -> None:
    s = Schedule(300, "cosine", prediction)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(6, 1, 4, 4, 4, generator=g, dtype=torch.float64) * 2 - 1
    eps = torch.randn(6, 1, 4, 4, 4, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 1, 50, 150, 298, 299])
    x_t = s.q_sample(x0, t, eps)
    v = s.v_from(x0, eps, t)
    assert torch.allclose(s.x0_from_eps(x_t, t, eps), x0, atol=1e-9)
    assert torch.allclose(s.eps_from_x0(x_t, t, x0), eps, atol=1e-9)
    assert torch.allclose(s.x0_from_v(x_t, t, v), x0, atol=1e-9)
    assert torch.allclose(s.eps_from_v(x_t, t, v), eps, atol=1e-9)
    target = s.training_target(x0, eps, t)
    assert torch.allclose(target, eps if prediction == "epsilon" else v)
    assert torch.allclose(s.predict_x0(x_t, t, target, clip=False), x0, atol=1e-9)


def test_q_sample_variance_preserving() -> None:
    s = Schedule(300)
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(1, 1, 32, 32, 32, generator=g)
    eps = torch.randn(1, 1, 32, 32, 32, generator=g)
    for t in (0, 150, 299):
        x_t = s.q_sample(x0, torch.tensor([t]), eps)
        assert abs(float(x_t.std()) - 1.0) < 0.05


def test_bad_names_are_rejected() -> None:
    with pytest.raises(ValueError):
        Schedule(300, "sigmoid")
    with pytest.raises(ValueError):
        Schedule(300, "cosine", "x0")
