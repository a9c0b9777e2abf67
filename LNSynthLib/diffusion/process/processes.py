"""The noise process of a config (`diffusion.process`), the one place that maps the name to its class."""

from __future__ import annotations

from typing import TYPE_CHECKING

from LNSynthLib.diffusion.process.rflow import RectifiedFlow
from LNSynthLib.diffusion.process.schedule import Schedule

if TYPE_CHECKING:
    from LNSynthLib.diffusion.config import LNDDPMConfig

NoiseProcess = Schedule | RectifiedFlow


def process_from_config(config: LNDDPMConfig) -> NoiseProcess:
    """DDPM's `Schedule` (the paper) or `RectifiedFlow`, with the config's number of training times."""
    if config.diffusion.process == "rflow":
        return RectifiedFlow(config.diffusion.timesteps)
    return Schedule.from_config(config)
