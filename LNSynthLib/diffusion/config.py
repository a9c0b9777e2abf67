"""LN-DDPM configuration: every number of the method is a config value, none is buried in code.

Configs are small YAML files (`configs/paper.yaml`, `configs/tiny.yaml`, or a user's own
file); `load_config("tiny")` reads a bundled one, `load_config(path)` a file, and
`overrides` change single values (`{"train.iterations": 100}`).
"""

from __future__ import annotations

import copy
import re
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from LNSynthLib.diffusion.choices import ATTENTION_MODES, VARIANTS
from LNSynthLib.diffusion.config_checks import LAYOUT_FIX, check_config, typed_value
from LNSynthLib.errors import ConfigError

CONFIG_DIR = Path(__file__).with_name("configs")
__all__ = ["ATTENTION_MODES", "VARIANTS", "LNDDPMConfig", "load_config", "read_yaml", "save_config"]


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader (no tags that run code), reading `1e-4` as a number as YAML 1.2 does.

    YAML 1.1, which PyYAML follows, needs a dot (`1.0e-4`); `lr: 1e-4` would otherwise reach the
    type check as the string '1e-4'.
    """


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def read_yaml(text: str) -> Any:  # noqa: ANN401 - any YAML value
    """The one reader of config YAML (files, `--set` values, the copy inside a checkpoint)."""
    return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 - a SafeLoader subclass


@dataclass
class NetworkConfig:
    variant: str = "ln_ddpm"                 # one of VARIANTS
    channels: tuple[int, ...] = (64, 128, 256, 256)
    res_blocks: int = 2
    norm_groups: int = 32
    attention_mode: str = "LD"               # LDCond mode: LD, LA or GA (paper Table 4c)
    ld_gate: str = "max"                     # choices.LD_GATES: how the LN mask reaches the 16³ gate
    ldcond_placement: str = "all"            # choices.LDCOND_PLACEMENTS: all (2 enc + mid + 3 dec) or middle
    transformer_resolution_divisor: int = 8  # spatial transformer at patch/8 (16³ for 128³)
    transformer_heads: int = 4
    transformer_head_dim: int = 32
    mask_encoder_channels: tuple[int, ...] = (16, 32, 64)
    anatomy_labels: int = 14
    gradient_checkpointing: bool = False
    channels_last: bool = False


@dataclass
class DiffusionConfig:
    process: str = "ddpm"                    # choices.PROCESSES: ddpm (paper) or rflow (rectified flow, MONAI)
    timesteps: int = 300
    schedule: str = "cosine"
    prediction: str = "epsilon"              # epsilon (paper) or v; process rflow always predicts velocity
    loss: str = "l1"
    variance: str = "fixed_small"            # choices.VARIANCES: β̃_t (paper 000) or learned_range (paper 002)
    vlb_weight: float = 0.001                # λ of L_simple + λ·L_vlb when the variance is learned (vlb.py)


@dataclass
class TrainConfig:
    patch_size: tuple[int, int, int] = (128, 128, 128)
    iterations: int = 45_000
    batch_size: int = 1                     # per process; global batch = batch_size × world size
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    ema_decay: float = 0.995
    ema_every: int = 1                       # EMA touched every N optimizer steps (diffusion/train/ema.py)
    ema_start: int = 0                       # before this step the EMA copies the raw weights
    ema_warmup: bool = True                  # decay min(ema_decay, (1+n)/(10+n)); defaults = `tiny`
    ln_patch_fraction: float = 0.9          # share of patches centred on a lymph node
    checkpoint_every: int = 1000
    log_every: int = 10
    amp: str = "auto"                        # choices.AMP_MODES: auto (bf16 on GPU), bf16, off
    compile: bool = False
    seed: int = 0


@dataclass
class SampleConfig:
    """Sampling defaults of a model; `lnsynth sample`, `demo`/`run` and the panel use them unless told otherwise."""

    sampler: str = "ddpm"                    # choices.SAMPLERS; ddpm = the paper's T ancestral steps
    steps: int = 300                         # ddim/dpmpp/rflow steps (ddpm always runs T)
    eta: float = 1.0                         # DDIM randomness: 0 deterministic .. 1 ancestral
    samples_per_case: int = 10               # synthetic cases per source case
    window: str = "per_node"                 # choices.SAMPLE_WINDOWS: window rule (diffusion/sample/windows.py)


@dataclass
class LNDDPMConfig:
    name: str = "paper"
    network: NetworkConfig = field(default_factory=NetworkConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def validate(self, source: str | Path | None = None) -> LNDDPMConfig:
        """Check every enumerated value and numeric range; errors name `source` (the YAML file)."""
        check_config(self, source)
        return self

    def sampling(self, *, sampler: str | None = None, steps: int | None = None, eta: float | None = None,
                 samples_per_case: int | None = None) -> SampleConfig:
        """This config's `sample` section with the given values in place of its own (None keeps the config's).

        The one place where a front end's "unset" becomes the model's default; the result is
        checked like a loaded config, so `--steps 0` fails with the same ConfigError.
        """
        given = {"sampler": sampler, "steps": steps, "eta": eta, "samples_per_case": samples_per_case}
        sample = replace(self.sample, **{k: v for k, v in given.items() if v is not None})
        replace(self, sample=sample).validate()
        return sample

    def get(self, dotted: str) -> Any:  # noqa: ANN401 - any config value
        """Value of a dotted key such as `train.amp`."""
        section, key = dotted.split(".")
        return getattr(getattr(self, section), key)


def _build(cls: type, values: Any, source: str | Path | None, prefix: str = "") -> Any:  # noqa: ANN401
    """Dataclass `cls` from a (nested) mapping, every value type-checked against the default's."""
    if not isinstance(values, dict):
        where = prefix.rstrip(".") or "the config"
        raise ConfigError(f"{where} must be a mapping of key: value lines, got {type(values).__name__}",
                          path=source, fix=LAYOUT_FIX)
    defaults = cls()
    known = [f.name for f in fields(cls)]
    kwargs = {}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if key not in known:
            raise ConfigError(f"unknown config key {dotted}", path=source,
                              fix=f"use one of {', '.join(prefix + k for k in known)}")
        default = getattr(defaults, key)
        if is_dataclass(default):
            kwargs[key] = _build(type(default), value, source, f"{dotted}.")
        else:
            kwargs[key] = typed_value(dotted, value, default, source)
    return cls(**kwargs)


def config_from_dict(values: dict[str, Any], source: str | Path | None = None) -> LNDDPMConfig:
    return _build(LNDDPMConfig, values, source).validate(source)


def load_config(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> LNDDPMConfig:
    """Read a bundled config by name (`paper`, `tiny`) or a YAML file, then apply dotted overrides.

    Every value is checked here (type, allowed values, range), so a bad config stops at once
    with a `ConfigError` naming the file and key instead of failing later inside training.
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        bundled = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
        raise ConfigError("config not found", path=path, fix=f"use one of: {bundled}, or a YAML file path")
    try:
        values = read_yaml(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"is not valid YAML ({' '.join(str(exc).split())})", path=path,
                          fix="correct the YAML at the line shown (compare with configs/paper.yaml)") from exc
    values = copy.deepcopy(values if values is not None else {})
    if not isinstance(values, dict):
        raise ConfigError(f"holds a {type(values).__name__}, not a mapping of config sections", path=path,
                          fix=LAYOUT_FIX)
    for dotted, value in (overrides or {}).items():
        target = values
        *parents, leaf = dotted.split(".")
        for key in parents:
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                raise ConfigError(f"--set {dotted}: {key} is not a config section", path=path,
                                  fix="write --set SECTION.KEY=VALUE, e.g. --set train.iterations=100")
        target[leaf] = value
    return config_from_dict(values, path)


def save_config(config: LNDDPMConfig) -> str:
    """YAML text of a config (stored inside checkpoints and run folders)."""
    return yaml.safe_dump(plain_data(config.to_dict()), sort_keys=False)


def plain_data(value: Any) -> Any:
    """Dicts/lists/tuples of a dataclass `asdict()` as plain YAML/JSON data (tuples become lists)."""
    if isinstance(value, dict):
        return {k: plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    return value
