"""Command-line options shared by several `lnsynth` commands: one spelling, one choice list, one default each.

Sampling options default to None, meaning "the LN-DDPM config decides" (the checkpoint's
config for `lnsynth sample`, the chosen config for `demo`/`run`): the config is the single
home of sampling defaults (`LNDDPMConfig.sampling`).
"""

from __future__ import annotations

import argparse
from typing import Any

from LNSynthLib.anatomy.provenance import ALLOW_COARSE_FLAG, ALLOW_OTHER_FLAG
from LNSynthLib.cli import arg_types as at
from LNSynthLib.devices import DEVICE_HELP
from LNSynthLib.diffusion.choices import BUNDLED_CONFIGS, SAMPLE_WINDOWS, SAMPLERS

CONFIG_METAVAR = "{" + ",".join(BUNDLED_CONFIGS) + ",FILE.yaml}"
CONFIG_CHOICES_TEXT = ("tiny (CPU-sized: tests, demo), paper (paper 000 as written, GPU server), paper-bf16 (paper in "
                       "bf16, faster), paper002 (paper 002's recipe) or your own YAML file")


def add_config(parser: argparse.ArgumentParser) -> None:
    """The required `--config` of `lnsynth train` / `run`: no silent default model (`demo` alone uses tiny)."""
    parser.add_argument("--config", default=None, metavar=CONFIG_METAVAR,
                        help=f"LN-DDPM config (required): {CONFIG_CHOICES_TEXT}")


def chosen_config(args: argparse.Namespace) -> str:
    """`--config` as given, or a usage error naming the choices (checked before any work)."""
    if args.config is None:
        from LNSynthLib.errors import UsageError

        raise UsageError(f"argument --config is required: {CONFIG_CHOICES_TEXT}",
                         fix=f"add --config {BUNDLED_CONFIGS[0]} for a CPU-sized run or --config paper for paper "
                             "000's settings")
    return args.config


SAMPLES_PER_CASE_HELP = "synthetic cases sampled per source case (default: the config's sample.samples_per_case)"
SYNT_PER_CASE_HELP = "synthetic cases per real case in a Real+Synt dataset (paper: 5, 10, 20)"


def add_sampling(parser: argparse.ArgumentParser, *, old_n_alias: bool = False) -> None:
    """`--samples-per-case`, `--sampler`, `--steps`, `--eta`, `--window`; None unless given (the config decides).

    `old_n_alias` keeps `lnsynth sample`'s former `--n` working (hidden from --help).
    """
    parser.add_argument("--samples-per-case", type=at.positive_int, default=None, metavar="N",
                        help=SAMPLES_PER_CASE_HELP)
    if old_n_alias:
        parser.add_argument("--n", dest="samples_per_case", type=at.positive_int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--sampler", choices=SAMPLERS, default=None,
                        help="reverse-process sampler (default: the config's sample.sampler; rflow only for a "
                             "checkpoint trained with diffusion.process: rflow)")
    parser.add_argument("--steps", type=at.positive_int, default=None,
                        help="DDIM/DPM++/rflow steps (default: the config's sample.steps; DDPM always uses T)")
    parser.add_argument("--eta", type=at.non_negative_float, default=None,
                        help="DDIM η, 0 deterministic .. 1 ancestral (default: the config's sample.eta)")
    parser.add_argument("--window", choices=SAMPLE_WINDOWS, default=None,
                        help="sampling window rule: per_node (every node appears across a case's samples) or "
                             "case_centre (one window on all nodes); default: the config's sample.window")


def sampling_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The sampling options the user gave, as LN-DDPM config overrides (`sample.steps`: 10, ...)."""
    given = {"samples_per_case": args.samples_per_case, "sampler": args.sampler, "steps": args.steps,
             "eta": args.eta, "window": args.window}
    return {f"sample.{key}": value for key, value in given.items() if value is not None}


QC_HELP = ("quality control of the synthetic pairs: score each against the real training cases (LN HU, LN-fat "
           "contrast, anatomy HU; NodeRecall with a real-data segmenter) into qc.json and leave the rejected ones "
           "out of the nnU-Net export")


def add_qc(parser: argparse.ArgumentParser, default: bool | None, what: str) -> None:
    """The one `--qc/--no-qc` switch; `what` says what it does in this command (None: the config decides)."""
    shown = "the config decides" if default is None else ("on" if default else "off")
    parser.add_argument("--qc", action=argparse.BooleanOptionalAction, default=default,
                        help=f"{QC_HELP}; here: {what} (default: {shown})")


def device_arg(text: str) -> str:
    """argparse `type` of `--device`: `auto|cpu|cuda|cuda:N` (`gpu` read as `cuda`), else a usage error."""
    from LNSynthLib.devices import DeviceError, normalize_device

    try:
        return normalize_device(text)
    except DeviceError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use {DEVICE_HELP}") from exc


def add_device(parser: argparse.ArgumentParser, what: str = "") -> None:
    """The one `--device` option; a GPU asked for on a machine without one fails when the job starts."""
    parser.add_argument("--device", type=device_arg, default="auto", metavar="{auto,cpu,cuda,cuda:N}",
                        help=DEVICE_HELP + (f" ({what})" if what else ""))


def add_anatomy_source(parser: argparse.ArgumentParser, labels_flag: str, default: str) -> None:
    """The label file option `labels_flag`, `--anatomy-source`, `--labels-kind`, `--resample-labels`,
    TotalSegmentator's `--device`/`--weights-dir`/`--full-resolution` and `--label-filter`: one anatomy
    vocabulary (`anatomy.build`)."""
    from LNSynthLib.anatomy.choices import ANATOMY_SOURCES, LABEL_KINDS, OLD_SOURCES
    from LNSynthLib.anatomy.groups import LABEL_FILTERS

    parser.add_argument(labels_flag, type=at.input_path,
                        help="label file: TotalSegmentator 'total' output or a 14-label anatomy map")
    parser.add_argument("--anatomy-source", default=default, choices=ANATOMY_SOURCES + tuple(OLD_SOURCES),
                        metavar="{" + ",".join(ANATOMY_SOURCES) + "}",
                        help=f"file: group the label file {labels_flag}; totalseg: run TotalSegmentator (offline "
                             "weights needed); coarse: weights-free thresholds (demo quality); auto: the file if "
                             f"given, else TotalSegmentator if its weights are installed, else coarse "
                             f"(default: {default})")
    parser.add_argument("--labels-kind", default="auto", choices=LABEL_KINDS,
                        help=f"what {labels_flag} holds: a TotalSegmentator 'total' output or a 14-label map "
                             "(auto: guessed from its values)")
    parser.add_argument("--resample-labels", action="store_true",
                        help="resample label maps on another grid onto the CT (nearest neighbour); without it only "
                             "the same grid, or the same voxels in another axis order/direction, is accepted")
    add_device(parser, "for TotalSegmentator")
    parser.add_argument("--weights-dir", help="TotalSegmentator home folder with its weights (TOTALSEG_HOME_DIR)")
    parser.add_argument("--full-resolution", action="store_true",
                        help="TotalSegmentator's 1.5 mm models (Tasks 291-295, as `lnsynth run --config paper` "
                             "uses) instead of the fast 3 mm model")
    parser.add_argument("--label-filter", default="none", choices=LABEL_FILTERS,
                        help="none: group every TotalSegmentator class (default); abdominal: paper 000's filtering, "
                             "thoracic/neck/head classes become body or air by thresholding "
                             "(anatomy/label_groups.json)")


def add_anatomy_opt_outs(parser: argparse.ArgumentParser) -> None:
    """`--allow-coarse-anatomy` and `--allow-other-anatomy`: the opt-outs of the paper run's anatomy guards."""
    parser.add_argument(ALLOW_COARSE_FLAG, action="store_true",
                        help="let a paper-scale run train on cases whose anatomy is the weights-free coarse map "
                             "(4 of 14 labels; refused otherwise)")
    parser.add_argument(ALLOW_OTHER_FLAG, action="store_true",
                        help="let a paper-scale run train on TotalSegmentator anatomy made without the abdominal "
                             "label filter or with the fast model, or of unrecorded source (refused otherwise)")


def anatomy_opt_outs(settings: Any, args: argparse.Namespace) -> Any:
    """The `PipelineSettings` with the anatomy guards the user switched off."""
    from dataclasses import replace

    changes = {key: True for key, flag in (("allow_coarse_anatomy", args.allow_coarse_anatomy),
                                           ("allow_other_anatomy", args.allow_other_anatomy)) if flag}
    return replace(settings, **changes)
