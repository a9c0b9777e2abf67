"""The panel's form, declared once: each field's default, range and choices, for both front ends.

The Slicer panel's parameter node (`LNSynthParameterNode` in LNSynth.py) and the web page's state both
read these values, so a default changed here changes both: nnU-Net Epochs 5 × Iterations 30 (a short
CPU run; 1000 epochs is nnU-Net's standard trainer, days on a CPU), 4 samples, the `tiny` config, the
in-CT mode with its margin. Choice lists come from the library's registries (torch-free modules, safe
in Slicer's process); the in-CT defaults keep their one home in `inct_defaults`.
"""

from __future__ import annotations

from dataclasses import dataclass

from LNSynthLib.anatomy.choices import ANATOMY_SOURCES
from LNSynthLib.devices import DEVICE_CHOICES
from LNSynthLib.diffusion.choices import BUNDLED_CONFIGS, SAMPLERS
from LNSynthLib.diffusion.sample.inct_defaults import DEFAULT_MARGIN_MM, SYNTHESIS_MODES
from LNSynthLib.errors import InputDataError

FROM_CHECKPOINT = "checkpoint"  # sampler: the one the checkpoint's config names
SAMPLER_CHOICES = [FROM_CHECKPOINT, *SAMPLERS]
DDPM_CONFIG_CHOICES = [*BUNDLED_CONFIGS, "file"]  # file: a YAML config chosen in the panel
ANATOMY_CHOICES = [s for s in ANATOMY_SOURCES if s in ("totalseg", "coarse")]  # what the panel can run on a CT
PATCH_SIDE_RANGE = (8, 512)   # a patch side the form accepts; the job checks it against nnU-Net's plan


@dataclass(frozen=True)
class Field:
    """One form field: its default and, for a number, its range; for a list, its choices."""

    default: object
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()


FIELDS: dict[str, Field] = {
    "anatomyMethod": Field("totalseg", choices=tuple(ANATOMY_CHOICES)),
    "ddpmConfig": Field("tiny", choices=tuple(DDPM_CONFIG_CHOICES)),
    "ddpmIterations": Field(0, 0, 1_000_000),        # 0: the config's own
    "synthesisMode": Field(SYNTHESIS_MODES[1], choices=tuple(SYNTHESIS_MODES)),   # in-ct: nodes into this CT
    "inctMarginMm": Field(DEFAULT_MARGIN_MM, 0.5, 50.0),
    "sampler": Field(FROM_CHECKPOINT, choices=tuple(SAMPLER_CHOICES)),
    "steps": Field(0, 0, 1000),                      # 0: the checkpoint's own
    "numberOfSamples": Field(4, 1, 100),
    "seed": Field(0, 0, 999_999),
    "useTransforms": Field(True),
    "pasteIntoCT": Field(True),
    "qualityControl": Field(True),
    "nnunetEpochs": Field(5, 1, 1000),
    "nnunetIterations": Field(30, 1, 250),
    "nnunetPatchSize": Field(""),                    # blank: nnU-Net's planned patch; else "Z Y X"
    "device": Field("auto", choices=tuple(DEVICE_CHOICES)),
}


def default(name: str) -> object:
    return FIELDS[name].default


def value_range(name: str) -> tuple[float, float]:
    """(low, high) of a number field: the panel's `WithinRange` and the page's check."""
    field = FIELDS[name]
    if field.low is None or field.high is None:
        raise KeyError(f"the form's {name} has no range")
    return field.low, field.high


def choices(name: str) -> list[str]:
    """The choice list of a list field: the panel's `Choice` and the page's select items."""
    if not FIELDS[name].choices:
        raise KeyError(f"the form's {name} has no choices")
    return list(FIELDS[name].choices)


def patch_size(text: object, where: str) -> tuple[int, int, int] | None:
    """The nnU-Net Patch field: blank is nnU-Net's planned patch, else three whole numbers Z Y X.

    `where` names the field for the fix (the panel's section or the page's). "32,32,32", "32x32x32" and
    "32 × 32 × 32" read as "32 32 32".
    """
    raw = str(text if text is not None else "")
    parts = raw.replace(",", " ").replace("x", " ").replace("×", " ").split()
    if not parts:
        return None
    low, high = PATCH_SIDE_RANGE
    if len(parts) != 3 or not all(p.isdigit() and low <= int(p) <= high for p in parts):
        raise InputDataError(f"Patch must be three whole numbers Z Y X from {low} to {high}, not '{raw[:30]}'",
                             fix=f"set Patch ({where}), e.g. 32 32 32, or leave it blank for nnU-Net's plan")
    return int(parts[0]), int(parts[1]), int(parts[2])
