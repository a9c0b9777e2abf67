"""`lnsynth sample`: synthetic cases from a trained LN-DDPM (resumable, shardable)."""

from __future__ import annotations

import argparse

from LNSynthLib.cli import arg_types as at
from LNSynthLib.cli.options import add_device, add_qc, add_sampling
from LNSynthLib.diffusion.sample.inct_defaults import DEFAULT_MARGIN_MM, INCT_TAG, SYNTHESIS_MODES
from LNSynthLib.shards import parse_shard


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="sample synthetic CT + LN cases with a trained LN-DDPM")
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt written by `lnsynth train`")
    p.add_argument("--cases", required=True, type=at.input_path, help="folder of prepared cases (conditions)")
    p.add_argument("--out", required=True, type=at.output_dir, help="folder for the synthetic case folders")
    add_sampling(p, old_n_alias=True)   # default of each: the checkpoint config's sample section
    p.add_argument("--mode", choices=SYNTHESIS_MODES, default=SYNTHESIS_MODES[0],
                   help="patch: paper 000's generated windows (anatomy kept, nodes transformed); in-ct: the nodes "
                        "of each case's LN mask (e.g. painted) synthesized into its own CT, the rest kept bit for bit")
    p.add_argument("--margin-mm", type=at.positive_float, default=DEFAULT_MARGIN_MM,
                   help="in-ct: the neighbourhood around each node that is generated with it")
    p.add_argument("--seed", type=at.seed, default=0)
    p.add_argument("--no-transforms", action="store_true", help="keep the original LN masks")
    p.add_argument("--shard", default="0/1", help="i/n: this process does cases i, i+n, ... (torchrun: by rank)")
    add_device(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing synthetic cases")
    p.add_argument("--raw-weights", action="store_true", help="use the raw weights instead of the EMA")
    add_qc(p, False, "score the samples after sampling against the --cases (the real cases) into <out>/qc.json")
    p.add_argument("--qc-model", type=at.input_path, default=None, metavar="DIR",
                   help="with --qc: an nnU-Net model folder trained on real data; adds the NodeRecall rule")
    p.set_defaults(func=run, outputs_apart={"out": ("cases", "checkpoint", "qc_model")})


def run(args: argparse.Namespace) -> int:
    from LNSynthLib.diffusion.sample.sampling import sample_cases
    from LNSynthLib.jobs.results import emit_result

    if args.qc_model and not args.qc:   # refused before hours of sampling, not after
        from LNSynthLib.errors import UsageError

        raise UsageError("--qc-model is used by quality control only", fix="add --qc")
    if args.overwrite:
        from LNSynthLib.qc.verdicts import forget_qc

        forget_qc(args.out)   # its verdicts are of the cases about to be replaced
    if args.mode == "in-ct":
        return _run_inct(args)
    folders = sample_cases(args.checkpoint, args.cases, args.out, samples_per_case=args.samples_per_case,
                           sampler=args.sampler, steps=args.steps, eta=args.eta, window=args.window, seed=args.seed,
                           transforms=not args.no_transforms, shard=parse_shard(args.shard), device=args.device,
                           overwrite=args.overwrite, use_ema=not args.raw_weights)
    if args.qc:
        from LNSynthLib.qc import score_synthetic

        report = score_synthetic(args.cases, args.out, real_model=args.qc_model, device=args.device)
        print(report.summary())
    emit_result("cases", args.out, count=len(folders))
    return 0


def _run_inct(args: argparse.Namespace) -> int:
    """`--mode in-ct`: the full CT of each case back, with its LN-mask nodes synthesized (`inct_cases.py`)."""
    from LNSynthLib.diffusion.sample.inct_cases import sample_inct_cases
    from LNSynthLib.errors import UsageError
    from LNSynthLib.jobs.results import emit_result

    unsupported = [flag for flag, used in (("--shard", args.shard != "0/1"), ("--no-transforms", args.no_transforms),
                                            ("--raw-weights", args.raw_weights), ("--qc", args.qc),
                                            ("--window", args.window is not None)) if used]
    if unsupported:
        raise UsageError(f"{', '.join(unsupported)} is for --mode patch only",
                         fix="leave it out, or sample with --mode patch")
    if args.overwrite:
        from pathlib import Path

        from LNSynthLib.atomic import remove_output_folder

        out = Path(args.out)
        for folder in sorted(out.glob(f"*{INCT_TAG}*")) if out.is_dir() else []:
            remove_output_folder(folder)   # only folders the project wrote (their marker says so)
    folders = sample_inct_cases(args.checkpoint, args.cases, args.out, samples_per_case=args.samples_per_case,
                                seed=args.seed, margin_mm=args.margin_mm, sampler=args.sampler, steps=args.steps,
                                eta=args.eta, device=args.device)
    emit_result("cases", args.out, count=len(folders), mode="in-ct")
    return 0
