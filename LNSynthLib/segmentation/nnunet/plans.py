"""What an nnU-Net plan decides for one configuration, and a hash of it, so unequal segmenters cannot hide.

A comparison of training-data strategies is fair only when every strategy trains the same
segmenter: architecture, patch, spacing and intensity normalization. nnU-Net plans each dataset
from its own cases (the median shape, the foreground intensities), so a dataset of 32³ synthetic
patches would get a smaller network and another normalization than the real cases. The pipeline
therefore plans the real cases and moves that plan to every other dataset
(`runner.transfer_plans`, nnU-Net's own `nnUNetv2_move_plans_between_datasets`); the hash
below is written next to every trained model, so a result row can show which plan it used.
Plain JSON: no nnU-Net import.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

# Plan entries that name the dataset or the file rather than decide the segmenter.
_NAMING_KEYS = ("dataset_name", "plans_name", "data_identifier", "image_reader_writer")


def resolved_configuration(plans: dict[str, Any], configuration: str) -> dict[str, Any]:
    """The configuration with its `inherits_from` chain merged in (nnU-Net merges shallowly, parent first)."""
    configs = plans["configurations"]
    if configuration not in configs:
        raise KeyError(f"the plans have no configuration {configuration!r}")
    chain, name = [], configuration
    while name is not None:
        if name in chain:
            raise ValueError(f"configuration {configuration!r} inherits from itself")
        chain.append(name)
        name = configs[name].get("inherits_from")
    merged: dict[str, Any] = {}
    for name in reversed(chain):
        merged.update({k: v for k, v in configs[name].items() if k != "inherits_from"})
    return merged


def plan_content(plans: dict[str, Any], configuration: str) -> dict[str, Any]:
    """Everything of a plan that changes the trained segmenter, for one configuration."""
    config = {k: v for k, v in resolved_configuration(plans, configuration).items() if k not in _NAMING_KEYS}
    return {"configuration": config,
            "foreground_intensity_properties_per_channel": plans.get("foreground_intensity_properties_per_channel"),
            "transpose_forward": plans.get("transpose_forward"), "transpose_backward": plans.get("transpose_backward")}


def plan_hash(plans_path: str | Path, configuration: str) -> str | None:
    """First 12 hex digits of the SHA-256 of `plan_content` (None when the plans file does not exist)."""
    path = Path(plans_path)
    if not path.exists():
        return None
    content = plan_content(json.loads(path.read_text(encoding="utf-8")), configuration)
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode("utf-8")).hexdigest()[:12]


def plan_summary(plans_path: str | Path, configuration: str) -> dict[str, Any] | None:
    """Stages, features, patch, spacing and the CT normalization window, for reports."""
    path = Path(plans_path)
    if not path.exists():
        return None
    plans = json.loads(path.read_text(encoding="utf-8"))
    config = resolved_configuration(plans, configuration)
    arch = config.get("architecture", {}).get("arch_kwargs", {})
    intensity = (plans.get("foreground_intensity_properties_per_channel") or {}).get("0", {})
    return {"stages": arch.get("n_stages"), "features_per_stage": arch.get("features_per_stage"),
            "patch_size": config.get("patch_size"), "spacing": config.get("spacing"),
            "batch_size": config.get("batch_size"), "normalization": config.get("normalization_schemes"),
            "clip_hu": [intensity.get("percentile_00_5"), intensity.get("percentile_99_5")]}
