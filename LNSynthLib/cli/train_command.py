"""`lnsynth train`: train LN-DDPM on prepared cases (resumes its run folder; torchrun for DDP)."""

from __future__ import annotations

import argparse
from typing import Any

from LNSynthLib.cli import arg_types as at
from LNSynthLib.cli.options import (
    add_anatomy_opt_outs,
    add_config,
    add_device,
    anatomy_opt_outs,
    chosen_config,
)
from LNSynthLib.errors import InputDataError


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`key=value` pairs; values are read as YAML (`train.patch_size=[32,32,32]`, `train.amp=off`)."""
    import yaml

    from LNSynthLib.diffusion.config import read_yaml

    overrides = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputDataError(f"--set {item!r} is not key=value", fix="write e.g. --set train.iterations=100")
        try:
            overrides[key.strip()] = read_yaml(value)
        except yaml.YAMLError as exc:
            raise InputDataError(f"--set {item!r}: the value is not valid YAML ({' '.join(str(exc).split())[:200]})",
                                 fix="write e.g. --set train.patch_size=[32,32,32] (quote it in the shell)") from None
    return overrides


def check_paper_anatomy(config_name: str, cases: str, args: argparse.Namespace) -> None:
    """A paper 000 config trains only on the anatomy `lnsynth run --config paper` accepts (the same guard)."""
    from LNSynthLib.anatomy.provenance import check_training_anatomy
    from LNSynthLib.diffusion.choices import PAPER_000_CONFIGS
    from LNSynthLib.pipeline import PipelineSettings

    if config_name in PAPER_000_CONFIGS:
        check_training_anatomy(cases, anatomy_opt_outs(PipelineSettings.paper(ddpm_config=config_name), args))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train LN-DDPM on prepared cases (resumable; torchrun for several GPUs)")
    add_config(p)
    p.add_argument("--cases", required=True, type=at.input_path, help="folder of prepared cases")
    p.add_argument("--run-dir", required=True, type=at.output_dir, help="folder for checkpoint.pt, config.yaml, loss.csv, loss.png")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value, e.g. --set train.iterations=200 (repeatable)")
    add_device(p, "torchrun: each rank takes its own GPU")
    p.add_argument("--no-resume", action="store_true", help="refuse to continue an existing run folder")
    p.add_argument("--max-steps", type=at.positive_int, default=None, help="stop (with a checkpoint) at this global step")
    add_anatomy_opt_outs(p)
    p.set_defaults(func=run, outputs_apart={"run_dir": ("cases",)})


def run(args: argparse.Namespace) -> int:
    from LNSynthLib.diffusion.config import load_config
    from LNSynthLib.diffusion.train.training import train
    from LNSynthLib.jobs.results import emit_result

    config = load_config(chosen_config(args), parse_overrides(args.overrides))   # ConfigError on any bad value
    check_paper_anatomy(args.config, args.cases, args)
    checkpoint = train(config, args.cases, args.run_dir, resume=not args.no_resume, device=args.device,
                       max_steps=args.max_steps)
    emit_result("checkpoint", checkpoint)
    return 0
