"""LN-DDPM configuration: every number of the method is a config value, none is buried in code.

Configs are small YAML files (`configs/paper.yaml`, `configs/tiny.yaml`, or a user's own
file); `load_config("tiny")` reads a bundled one, `load_config(path)` a file, and
`overrides` change single values (`{"train.iterations": 100}`).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from LNSynthLib.errors import InputDataError

CONFIG_DIR = Path(__file__).with_name("configs")
VARIANTS = ("ln_ddpm", "conditional", "mask_guided", "edge_guided", "gscond_ln_only", "med_ddpm")
ATTENTION_MODES = ("LD", "LA", "GA")


@dataclass
class NetworkConfig:
    variant: str = "ln_ddpm"                 # one of VARIANTS
    channels: tuple[int, ...] = (64, 128, 256, 256)
    res_blocks: int = 2
    norm_groups: int = 32
    attention_mode: str = "LD"               # LDCond mode: LD, LA or GA (paper Table 4c)
    transformer_resolution_divisor: int = 8  # spatial transformer at patch/8 (16³ for 128³)
    transformer_heads: int = 4
    transformer_head_dim: int = 32
    mask_encoder_channels: tuple[int, ...] = (16, 32, 64)
    anatomy_labels: int = 14
    gradient_checkpointing: bool = False
    channels_last: bool = False


@dataclass
class DiffusionConfig:
    timesteps: int = 300
    schedule: str = "cosine"
    prediction: str = "epsilon"              # epsilon (paper) or v
    loss: str = "l1"


@dataclass
class TrainConfig:
    patch_size: tuple[int, int, int] = (128, 128, 128)
    iterations: int = 45_000
    batch_size: int = 1
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    ema_decay: float = 0.995
    ln_patch_fraction: float = 0.9          # share of patches centred on a lymph node
    checkpoint_every: int = 1000
    log_every: int = 10
    amp: str = "auto"                        # auto (bf16 on GPU), bf16, off
    compile: bool = False
    seed: int = 0


@dataclass
class SampleConfig:
    sampler: str = "ddpm"                    # ddpm (paper, T steps) or ddim
    steps: int = 300
    eta: float = 1.0
    samples_per_case: int = 10


@dataclass
class LNDDPMConfig:
    name: str = "paper"
    network: NetworkConfig = field(default_factory=NetworkConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def validate(self) -> LNDDPMConfig:
        if self.network.variant not in VARIANTS:
            raise ValueError(f"network.variant must be one of {VARIANTS}, got {self.network.variant!r}")
        if self.network.attention_mode not in ATTENTION_MODES:
            raise ValueError(f"network.attention_mode must be one of {ATTENTION_MODES}")
        if self.diffusion.prediction not in ("epsilon", "v"):
            raise ValueError("diffusion.prediction must be 'epsilon' or 'v'")
        divisor = 2 ** (len(self.network.channels) - 1)
        for size in self.train.patch_size:
            if size % divisor:
                raise ValueError(f"train.patch_size {self.train.patch_size} must be divisible by {divisor}")
        return self


def _build(cls: type, values: dict[str, Any]) -> Any:
    """Dataclass `cls` from a (nested) dict, turning YAML lists into tuples where the default is one."""
    defaults = cls()
    known = {f.name for f in fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise ValueError(f"unknown config key {cls.__name__}.{key}")
        default = getattr(defaults, key)
        if is_dataclass(default) and isinstance(value, dict):
            kwargs[key] = _build(type(default), value)
        elif isinstance(default, tuple) and isinstance(value, list):
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def config_from_dict(values: dict[str, Any]) -> LNDDPMConfig:
    return _build(LNDDPMConfig, values).validate()


def load_config(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> LNDDPMConfig:
    """Read a bundled config by name (`paper`, `tiny`) or a YAML file, then apply dotted overrides."""
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        bundled = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
        raise InputDataError("config not found", path=path, fix=f"use one of: {bundled}, or a YAML file path")
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    values = copy.deepcopy(values)
    for dotted, value in (overrides or {}).items():
        target = values
        *parents, leaf = dotted.split(".")
        for key in parents:
            target = target.setdefault(key, {})
        target[leaf] = value
    return config_from_dict(values)


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
