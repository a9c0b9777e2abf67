"""The `lnsynth` command lines the panel and the web page start, and the settings they are built from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from LNSynthLib.diffusion.sample.inct_defaults import DEFAULT_MARGIN_MM, SYNTHESIS_MODES
from LNSynthLib.segmentation.nnunet.constants import STANDARD_EPOCHS
from LNSynthLib.volumes.preprocess import TEST_MARGIN_MM

PATCH, IN_CT = SYNTHESIS_MODES   # `lnsynth sample --mode`: paper 000's patches, or the nodes in the user's CT


@dataclass
class SynthesisSettings:
    """What *Synthesize* passes to `lnsynth sample`; sampler and steps `None`: the checkpoint's own.

    `mode` in-ct: the painted nodes synthesized into the user's own CT (`inct_margin_mm` around each
    node is generated with it); `transforms`, `paste_into_ct` and `qc` are patch-mode options.
    """

    checkpoint: Path
    n_samples: int = 4
    sampler: str | None = None
    steps: int | None = None
    seed: int = 0
    transforms: bool = True
    device: str = "auto"
    margin_mm: float = TEST_MARGIN_MM
    paste_into_ct: bool = True
    qc: bool = True      # `lnsynth sample --qc`: score the samples into qc.json (the export honours it)
    mode: str = PATCH
    inct_margin_mm: float = DEFAULT_MARGIN_MM


def sample_args(settings: SynthesisSettings, cases: Path, out: Path) -> list[str]:
    """`lnsynth sample` for *Synthesize*; the patch-mode options are left out in in-CT mode."""
    args = ["sample", "--checkpoint", str(settings.checkpoint), "--cases", str(cases), "--out", str(out),
            "--samples-per-case", str(settings.n_samples), "--seed", str(settings.seed), "--device", settings.device,
            "--mode", settings.mode]
    if settings.sampler:
        args += ["--sampler", settings.sampler]
    if settings.steps:
        args += ["--steps", str(settings.steps)]
    if settings.mode == IN_CT:
        return [*args, "--margin-mm", f"{settings.inct_margin_mm:g}"]
    if not settings.transforms:
        args.append("--no-transforms")
    if settings.qc:
        args.append("--qc")
    return args


def nnunet_train_args(dataset_dir: str | Path, epochs: int, iterations: int, device: str,
                      patch_size: Sequence[int] | None = None) -> list[str]:
    """CLI arguments: nnU-Net's standard trainer at its 1000 epochs, else the short trainer."""
    args = ["nnunet", "train", "--dataset", str(dataset_dir), "--device", device]
    if epochs < STANDARD_EPOCHS:
        args += ["--epochs", str(int(epochs)), "--iterations", str(int(iterations))]
    if patch_size:
        args += ["--patch-size", *(str(int(v)) for v in patch_size)]
    return args
