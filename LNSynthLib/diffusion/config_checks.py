"""Load-time checks of an LN-DDPM config: types, allowed values and numeric ranges.

Everything a user can get wrong in a config file or a `--set` value is caught here, with a
`ConfigError` that names the file, the key, what is allowed and how to fix it; later code
(schedule, samplers, training) can then treat a bad value as a programming error.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from LNSynthLib.diffusion.choices import CONFIG_CHOICES, LDCOND_VARIANTS, RFLOW_SAMPLERS, SAMPLERS
from LNSynthLib.errors import ConfigError

Source = str | Path | None

# key -> (lowest, highest, lowest excluded); a sequence value is checked element by element.
RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "network.channels": (1, None, False),
    "network.res_blocks": (1, None, False),
    "network.norm_groups": (1, None, False),
    "network.transformer_resolution_divisor": (1, None, False),
    "network.transformer_heads": (1, None, False),
    "network.transformer_head_dim": (1, None, False),
    "network.mask_encoder_channels": (1, None, False),
    "network.anatomy_labels": (2, None, False),
    "diffusion.timesteps": (1, None, False),
    "diffusion.vlb_weight": (0, None, False),
    "train.patch_size": (1, None, False),
    "train.iterations": (1, None, False),
    "train.batch_size": (1, None, False),
    "train.lr": (0, None, True),
    "train.betas": (0, 0.999999, False),
    "train.ema_decay": (0, 1, False),
    "train.ema_every": (1, None, False),
    "train.ema_start": (0, None, False),
    "train.ln_patch_fraction": (0, 1, False),
    "train.checkpoint_every": (1, None, False),
    "train.log_every": (1, None, False),
    "train.seed": (0, None, False),
    "sample.steps": (1, None, False),
    "sample.eta": (0, 1, False),
    "sample.samples_per_case": (1, None, False),
}
FIXED_LENGTHS = {"train.patch_size": 3, "train.betas": 2}
LAYOUT_FIX = "write the config as YAML `section:` blocks of `key: value` lines, like configs/paper.yaml"


def typed_value(key: str, value: Any, default: Any, source: Source) -> Any:
    """`value` converted to the type of `default` (YAML ints for floats, lists for tuples), or a ConfigError."""
    def wrong(expected: str) -> ConfigError:
        return ConfigError(f"{key} = {value!r} has the wrong type; expected {expected}", path=source,
                           fix=f"write {key} as {expected} (see the bundled configs/paper.yaml)")

    if key == "train.amp" and value is False:   # YAML 1.1 reads an unquoted `off` as false
        return "off"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("a whole number")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong("a number")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise wrong("a word")
        return value
    if isinstance(default, tuple):
        length = FIXED_LENGTHS.get(key)
        if not isinstance(value, (list, tuple)) or not value or (length and len(value) != length):
            raise wrong(f"a list of {length or 'one or more'} numbers, e.g. [{', '.join(map(str, default))}]")
        return tuple(typed_value(key, v, default[0], source) for v in value)
    return value


def check_config(config: Any, source: Source) -> None:  # noqa: ANN401 - LNDDPMConfig (import cycle)
    """Raise a ConfigError for the first enumerated value, range or shape rule `config` breaks."""
    for key, allowed in CONFIG_CHOICES.items():
        value = config.get(key)
        if value not in allowed:
            listed = ", ".join(allowed)
            raise ConfigError(f"{key} = {value!r} is not allowed; allowed values: {listed}", path=source,
                              fix=f"set {key} to one of {listed} (in the YAML file or with --set {key}=VALUE)")
    _check_process(config, source)
    for key, (low, high, low_open) in RANGES.items():
        value = config.get(key)
        for v in value if isinstance(value, tuple) else (value,):
            too_low = low is not None and (v <= low if low_open else v < low)
            if too_low or (high is not None and v > high) or not math.isfinite(v):
                wanted = f"{'>' if low_open else '>='} {low:g}" + ("" if high is None else f" and <= {high:g}")
                raise ConfigError(f"{key} = {value!r} is out of range; it must be finite and {wanted}",
                                  path=source, fix=f"set {key} to a value {wanted}")
    _check_network_rules(config.network, source)
    divisor = 2 ** (len(config.network.channels) - 1)
    if any(size % divisor for size in config.train.patch_size):
        raise ConfigError(f"train.patch_size {list(config.train.patch_size)} must be divisible by {divisor} "
                          "(2 ** (number of network.channels levels - 1))", path=source,
                          fix=f"use multiples of {divisor}, e.g. --set train.patch_size=[{4 * divisor},"
                              f"{4 * divisor},{4 * divisor}]")
    deepest = 2 ** (len(config.network.channels) - 1)
    if config.network.ldcond_placement == "middle" and config.network.transformer_resolution_divisor != deepest:
        raise ConfigError("network.ldcond_placement = middle puts the one transformer in the middle block, which "
                          f"sits at patch/{deepest}, but network.transformer_resolution_divisor = "
                          f"{config.network.transformer_resolution_divisor}", path=source,
                          fix=f"set network.transformer_resolution_divisor={deepest} or "
                              "network.ldcond_placement=all")
    groups = config.network.norm_groups
    if any(c % groups for c in config.network.channels):
        raise ConfigError(f"network.channels {list(config.network.channels)} must all be multiples of "
                          f"network.norm_groups = {groups}", path=source,
                          fix="change network.channels or network.norm_groups")


def _check_network_rules(net: Any, source: Source) -> None:  # noqa: ANN401 - NetworkConfig (import cycle)
    """The network's own rules, which a value can break while in range: the attention level is one of the
    U-Net's levels, plain self-attention splits its channels into heads, one input channel per anatomy label."""
    levels, divisor = len(net.channels), net.transformer_resolution_divisor
    allowed = [2**level for level in range(levels)]
    if divisor not in allowed:
        listed = ", ".join(map(str, allowed))
        raise ConfigError(f"network.transformer_resolution_divisor = {divisor} is not a level of the U-Net: with "
                          f"{levels} network.channels level{'s' if levels > 1 else ''} the attention sits at patch/{listed.replace(', ', ', /')}",
                          path=source, fix=f"set network.transformer_resolution_divisor to one of {listed}, or give "
                                           "network.channels more levels")
    width = net.channels[allowed.index(divisor)]
    if net.variant not in LDCOND_VARIANTS and width % net.transformer_head_dim:
        fitting = [d for d in range(1, width + 1) if width % d == 0 and d <= net.transformer_head_dim]
        raise ConfigError(f"network.transformer_head_dim = {net.transformer_head_dim} does not divide the {width} "
                          f"channels of the attention level of network.variant = {net.variant} (plain "
                          "self-attention splits them into heads of that size)", path=source,
                          fix=f"set network.transformer_head_dim to a divisor of {width}, e.g. {fitting[-1]}")
    from LNSynthLib.anatomy.groups import NUM_LABELS

    if net.anatomy_labels < NUM_LABELS:
        raise ConfigError(f"network.anatomy_labels = {net.anatomy_labels} is fewer than the {NUM_LABELS} labels "
                          f"(0..{NUM_LABELS - 1}) of the anatomy map every prepared case holds", path=source,
                          fix=f"set network.anatomy_labels={NUM_LABELS}")


def _check_process(config: Any, source: Source) -> None:  # noqa: ANN401 - LNDDPMConfig
    """Rectified flow samples only with its Euler sampler, DDPM only with its own; rflow has no learned variance."""
    process, sampler = config.diffusion.process, config.sample.sampler
    fitting = RFLOW_SAMPLERS if process == "rflow" else tuple(s for s in SAMPLERS if s not in RFLOW_SAMPLERS)
    if sampler not in fitting:
        listed = ", ".join(fitting)
        raise ConfigError(f"sample.sampler = {sampler!r} does not sample diffusion.process = {process!r}; "
                          f"its samplers: {listed}", path=source,
                          fix=f"set sample.sampler to {' or '.join(fitting)} (--set sample.sampler=VALUE or "
                              "--sampler), or choose the other diffusion.process")
    if process == "rflow" and config.diffusion.variance != "fixed_small":
        raise ConfigError("diffusion.variance = 'learned_range' belongs to the DDPM process; rectified flow "
                          "(diffusion.process = 'rflow') has no reverse variance to learn", path=source,
                          fix="set diffusion.variance=fixed_small or diffusion.process=ddpm")
