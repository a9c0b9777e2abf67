"""Rectified flow (`diffusion.process: rflow`): the straight path from noise to data, as MAISI trains it.

x_t = (1 - t/T)·x0 + (t/T)·ε for continuous t in [0, T), the network predicts the velocity
v = x0 - ε (L1 or L2 like the DDPM loss), and sampling integrates dx = v·dt with Euler steps
from pure noise at t = T to t = 0. The maths is MONAI's `RFlowScheduler` (`add_noise`,
`set_timesteps`, `step`), the scheduler MAISI uses; this class adapts it to the training loop and
samplers of the DDPM process:

- training times come from the run's own generator (MONAI's `sample_timesteps` draws from the
  global RNG without a generator argument), so a resumed run continues exactly; the draw is
  continuous uniform, MONAI's `use_discrete_timesteps=False` with `sample_method="uniform"`;
- the sampler uses MONAI's integer time grid (`use_discrete_timesteps=True`): its `step` rounds
  the next time to an int, which is exact only on that grid;
- no resolution-dependent time shift (`use_timestep_transform=False`): the patch size is fixed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
StepCallback = Callable[[int, int], None]


def _rflow_scheduler() -> type:
    """MONAI's `RFlowScheduler` class, imported without the rest of MONAI (`monai_parts`)."""
    from LNSynthLib.diffusion.model.monai_parts import import_light

    return import_light("monai.networks.schedulers.rectified_flow")[0].RFlowScheduler


class RectifiedFlow:
    """The rflow process with the interface training and sampling use (`timesteps`, `q_sample`, ...)."""

    learned_variance = False     # config_checks refuses diffusion.variance=learned_range with rflow
    prediction = "velocity"      # x0 - ε; diffusion.prediction is not used by this process

    def __init__(self, timesteps: int = 300) -> None:
        RFlowScheduler = _rflow_scheduler()

        self.timesteps = int(timesteps)
        self.scheduler = RFlowScheduler(num_train_timesteps=self.timesteps, use_discrete_timesteps=True,
                                        sample_method="uniform", use_timestep_transform=False)

    def sample_timesteps(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n training times, continuous uniform in [0, T) (t = T is pure noise)."""
        return torch.rand((n,), generator=generator) * self.timesteps

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = (1 - t/T)·x0 + (t/T)·ε (MONAI `add_noise`)."""
        return self.scheduler.add_noise(x0, noise, t)

    def training_target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The velocity dx/d(1 - t/T) = x0 - ε that the network learns (MONAI's RFlow training target)."""
        return x0 - noise

    def inference_scheduler(self, steps: int):  # noqa: ANN201 - monai RFlowScheduler
        """A MONAI scheduler set to `steps` Euler steps on its integer grid T, T - T/steps, ... (at most T steps)."""
        RFlowScheduler = _rflow_scheduler()

        scheduler = RFlowScheduler(num_train_timesteps=self.timesteps, use_discrete_timesteps=True,
                                   sample_method="uniform", use_timestep_transform=False)
        scheduler.set_timesteps(num_inference_steps=min(max(1, int(steps)), self.timesteps))
        return scheduler


@torch.no_grad()
def rflow_sample(model_fn: ModelFn, flow: RectifiedFlow, shape: tuple[int, ...], generator: torch.Generator,
                 device: torch.device, steps: int, callback: StepCallback | None = None) -> torch.Tensor:
    """Euler integration from noise (t = T) to data (t = 0) in `steps` network evaluations; result in [-1, 1]."""
    x = torch.randn(shape, generator=generator, dtype=torch.float32).to(device)
    scheduler = flow.inference_scheduler(steps)
    times = [int(t) for t in scheduler.timesteps] + [0]
    for i, (t, t_next) in enumerate(zip(times[:-1], times[1:], strict=True)):
        tt = torch.full((shape[0],), float(t), device=device)
        x, _ = scheduler.step(model_fn(x, tt).float(), t, x, t_next)
        if callback is not None:
            callback(i + 1, len(times) - 1)
    return x.clamp(-1, 1)   # the data range, as the DDPM samplers clip their x0
