"""The `lnsynth` command lines the panel and the web page start: one builder per job, shared by both."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from LNSynthLib.diffusion.sample.inct_defaults import SYNTHESIS_MODES
from LNSynthLib.segmentation.nnunet_constants import STANDARD_EPOCHS

if TYPE_CHECKING:
    from .logic import SynthesisSettings

PATCH, IN_CT = SYNTHESIS_MODES   # `lnsynth sample --mode`: paper 000's patches, or the nodes in the user's CT


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
