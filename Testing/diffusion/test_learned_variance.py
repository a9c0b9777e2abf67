"""Paper 002's recipe: learned variance, the hybrid loss L_simple + λ·L_vlb, its sampler, the bundled config."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from LNSynthLib.diffusion.config import load_config
from LNSynthLib.diffusion.process.samplers import run_sampler
from LNSynthLib.diffusion.process.schedule import Schedule
from LNSynthLib.diffusion.process.vlb import (
    approx_standard_normal_cdf,
    discretized_gaussian_log_likelihood,
    hybrid_loss,
    normal_kl,
    vlb_terms,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_normal_kl_on_known_numbers() -> None:
    zero = torch.zeros(1)
    assert float(normal_kl(zero, zero, zero, zero)) == 0.0
    # KL(N(1, 1) || N(0, 4)) = ½(-1 + ln 4 - 0 + 1/4 + 1/4) = ½(ln 4 - ½)
    kl = normal_kl(torch.tensor([1.0]), zero, zero, torch.tensor([math.log(4.0)]))
    assert float(kl) == pytest.approx(0.5 * (math.log(4.0) - 0.5), rel=1e-6)
    assert float(kl) == pytest.approx(0.4431472, abs=1e-6)


def test_cdf_approximation() -> None:
    x = torch.tensor([0.0, 1.0, -1.96, 3.0], dtype=torch.float64)
    expected = torch.tensor([phi(float(v)) for v in x], dtype=torch.float64)
    assert torch.allclose(approx_standard_normal_cdf(x), expected, atol=3e-4)


def test_discretized_log_likelihood_on_known_numbers() -> None:
    h = 1 / 255
    # x = 0 under N(0, 1): ln(Φ(h) - Φ(-h)) ≈ ln(2h·φ(0)) = ln(0.0031290)
    got = float(discretized_gaussian_log_likelihood(torch.zeros(1), torch.zeros(1), torch.zeros(1)))
    assert got == pytest.approx(math.log(phi(h) - phi(-h)), rel=1e-4)
    assert got == pytest.approx(-5.7670, abs=1e-3)
    # the end bins reach to ±∞: x = -1 under N(-1, tiny) has probability 1 (log 0)
    edge = discretized_gaussian_log_likelihood(torch.tensor([-1.0]), torch.tensor([-1.0]), torch.tensor([-10.0]))
    assert float(edge) == pytest.approx(0.0, abs=1e-6)
    # the 256 bins of [-1, 1] are a probability distribution for any Gaussian
    bins = torch.linspace(-1, 1, 256, dtype=torch.float64)
    for mean, log_scale in ((0.3, math.log(0.2)), (-0.9, math.log(0.05))):
        logp = discretized_gaussian_log_likelihood(bins, torch.full_like(bins, mean), torch.full_like(bins, log_scale))
        assert float(logp.exp().sum()) == pytest.approx(1.0, abs=1e-6)


def exact_case(schedule: Schedule, t: int) -> tuple[torch.Tensor, ...]:
    """x0, x_t, the true ε (a perfect prediction) and t for one 4³ sample."""
    g = torch.Generator().manual_seed(t)
    x0 = torch.rand(1, 1, 4, 4, 4, generator=g, dtype=torch.float64) * 1.6 - 0.8
    noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    tt = torch.tensor([t])
    return x0, schedule.q_sample(x0, tt, noise), noise, tt


def test_vlb_term_kl_is_zero_for_the_true_posterior_and_hand_computed_for_beta() -> None:
    schedule = Schedule(1000, "linear", "epsilon", "learned_range")
    t = 500
    x0, x_t, noise, tt = exact_case(schedule, t)
    v_low = -torch.ones_like(x0)     # log β̃_t: the true posterior variance
    assert float(vlb_terms(schedule, noise, v_low, x0, x_t, tt)) == pytest.approx(0.0, abs=1e-9)
    beta, post = float(schedule.betas[t]), float(schedule.posterior_variance[t])
    expected_bits = 0.5 * (-1 + math.log(beta) - math.log(post) + post / beta) / math.log(2)
    got = float(vlb_terms(schedule, noise, torch.ones_like(x0), x0, x_t, tt))
    assert got == pytest.approx(expected_bits, rel=1e-6) and got > 0


def test_vlb_term_at_t0_is_the_decoder_nll() -> None:
    schedule = Schedule(1000, "linear", "epsilon", "learned_range")
    x0, x_t, noise, tt = exact_case(schedule, 0)
    x0 = torch.zeros_like(x0)                 # data exactly at a bin centre
    x_t = schedule.q_sample(x0, tt, noise)
    std = math.sqrt(float(schedule.posterior_variance[1]))   # v = -1: log β̃ clipped to β̃_1 at t = 0
    h = 1 / 255
    expected_bits = -math.log(phi(h / std) - phi(-h / std)) / math.log(2)
    got = float(vlb_terms(schedule, noise, -torch.ones_like(x0), x0, x_t, tt))
    assert got == pytest.approx(expected_bits, rel=1e-3)


def test_hybrid_loss_weights_the_vlb_by_lambda_times_t_and_trains_only_the_variance_through_it() -> None:
    schedule = Schedule(1000, "linear", "epsilon", "learned_range")
    x0, x_t, noise, tt = exact_case(schedule, 300)
    x0, x_t, noise = x0.float(), x_t.float(), noise.float()
    out = torch.cat([noise + 0.1, torch.full_like(noise, 0.5)], dim=1).requires_grad_(True)
    simple = float(torch.nn.functional.mse_loss(noise + 0.1, noise))
    vlb = float(vlb_terms(schedule, noise + 0.1, out[:, 1:].detach(), x0, x_t, tt))
    loss = hybrid_loss(schedule, out, noise, x0, x_t, tt, "l2", 0.001)
    assert float(loss.detach()) == pytest.approx(simple + 0.001 * 1000 * vlb, rel=1e-5)
    loss.backward()
    grad_eps = out.grad[:, 0]
    assert torch.allclose(grad_eps, 2 * 0.1 * torch.ones_like(grad_eps) / grad_eps.numel()), \
        "the ε channel gets only L_simple's gradient (mean stopped in L_vlb)"
    assert out.grad[:, 1].abs().sum() > 0


def test_ddpm_sampler_uses_the_learned_variance() -> None:
    learned = Schedule(50, "linear", "epsilon", "learned_range")
    fixed = Schedule(50, "linear", "epsilon")

    def fn(v: float):  # noqa: ANN202 - a model: ε = 0.1·x_t and a constant v
        return lambda x, t: torch.cat([0.1 * x, torch.full_like(x, v)], dim=1)

    def draw(schedule: Schedule, model) -> torch.Tensor:  # noqa: ANN001
        return run_sampler(model, schedule, (1, 1, 4, 4, 4), sampler="ddpm", steps=50, eta=1.0,
                           generator=torch.Generator().manual_seed(0), device=torch.device("cpu"))

    reference = draw(fixed, lambda x, t: 0.1 * x)
    assert torch.allclose(draw(learned, fn(-1.0)), reference, atol=1e-5), "v = -1 is the fixed-small variance"
    assert not torch.allclose(draw(learned, fn(1.0)), reference, atol=1e-3)
    ddim = run_sampler(fn(1.0), learned, (1, 1, 4, 4, 4), sampler="ddim", steps=5, eta=0.0,
                       generator=torch.Generator().manual_seed(0), device=torch.device("cpu"))
    assert ddim.shape == (1, 1, 4, 4, 4)


def test_paper002_config_and_a_tiny_learned_variance_model_trains(phantom_cases: Path, tmp_path: Path) -> None:
    from LNSynthLib.diffusion.sample.sampling import load_model, sample_patch
    from LNSynthLib.diffusion.train.checkpoint import load_checkpoint
    from LNSynthLib.diffusion.train.training import train

    paper002 = load_config("paper002")
    d = paper002.diffusion
    assert (d.timesteps, d.schedule, d.prediction, d.loss, d.variance, d.vlb_weight) == \
        (1000, "linear", "epsilon", "l2", "learned_range", 0.001)
    assert (paper002.train.lr, paper002.train.batch_size, paper002.train.iterations) == (1e-4, 16, 150_000)
    assert paper002.network.variant == "mask_guided" and paper002.sample.sampler == "ddpm"

    config = load_config("tiny", {"train.patch_size": [16, 16, 16], "train.batch_size": 2, "train.iterations": 6,
                                  "train.checkpoint_every": 6, "train.log_every": 1, "diffusion.timesteps": 40,
                                  "diffusion.schedule": "linear", "diffusion.prediction": "epsilon",
                                  "diffusion.loss": "l2", "diffusion.variance": "learned_range"})
    ckpt = train(config, phantom_cases, tmp_path / "run", device="cpu", progress=False)
    payload = load_checkpoint(ckpt)
    losses = [v for _, v in payload["loss_history"]]
    assert len(losses) == 6 and all(math.isfinite(v) for v in losses)
    out_weight = payload["model"]["out.2.weight"]
    assert out_weight.shape[0] == 2 and out_weight[1].abs().sum() > 0, "the variance channel was trained"
    model, loaded, _ = load_model(ckpt, torch.device("cpu"))
    anatomy = torch.zeros(16, 16, 16, dtype=torch.long)
    ln = torch.zeros(16, 16, 16)
    x = sample_patch(model, Schedule.from_config(loaded), anatomy, ln, "ddpm", 40, 1.0,
                     torch.Generator().manual_seed(0))
    assert x.shape == (1, 1, 16, 16, 16) and torch.isfinite(x).all() and float(x.abs().max()) <= 1.0
