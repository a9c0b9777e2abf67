"""`lnsynth demo` (embedded phantom, CPU-sized) and `lnsynth run` (your prepared cases): the whole job."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from LNSynthLib.cli import arg_types as at
from LNSynthLib.cli.options import (
    SYNT_PER_CASE_HELP,
    add_anatomy_opt_outs,
    add_config,
    add_device,
    add_qc,
    add_sampling,
    anatomy_opt_outs,
    chosen_config,
    sampling_overrides,
)
from LNSynthLib.pipeline import DEFAULT_REAL_SHARE, PIPELINE_STRATEGIES, PipelineSettings, run_pipeline

STANDARD = "standard"   # --nnunet-epochs standard: nnU-Net's own trainer (1000 epochs)
UNIFORM = "uniform"     # --nnunet-real-share uniform: nnU-Net's own uniform draw over the training cases


def real_share_arg(text: str) -> float | str:
    """`--nnunet-real-share`: a share strictly between 0 and 1, or `uniform`."""
    return UNIFORM if text.strip().lower() == UNIFORM else at.real_share(text)


def nnunet_epochs_arg(text: str) -> int | str:
    """`--nnunet-epochs`: a positive number of epochs of the short trainer, or `standard`."""
    return STANDARD if text.strip().lower() == STANDARD else at.positive_int(text)


def _common(p: argparse.ArgumentParser, qc_default: bool | None) -> None:
    p.add_argument("--out", required=True, type=at.output_dir, help="work folder (re-run the same command to continue)")
    add_device(p)
    p.add_argument("--paste", action="store_true", help="also train Real+Synt with patches pasted into the CT")
    p.add_argument("--nnunet-epochs", type=nnunet_epochs_arg, default=None, metavar="{N,standard}",
                   help="epochs of the short nnU-Net trainer, or `standard` for nnU-Net's own trainer (the "
                        "default of --config paper and of your own YAML)")
    p.add_argument("--nnunet-iterations", type=at.positive_int, default=None, help="iterations per nnU-Net epoch")
    p.add_argument("--nnunet-patience", type=at.positive_int, default=None, metavar="EPOCHS",
                   help="stop nnU-Net when the smoothed validation loss has not improved for this many epochs "
                        "(--nnunet-epochs is then the max budget; the same rule for every strategy)")
    p.add_argument("--nnunet-min-delta", type=at.positive_float, default=None,
                   help="smallest validation-loss drop that counts as an improvement (default 0.005)")
    p.add_argument("--nnunet-patch-size", type=at.non_negative_int, nargs=3, metavar=("Z", "Y", "X"), default=None,
                   help="nnU-Net training patch (demo: 32 32 32); 0 0 0 keeps nnU-Net's planned patch")
    p.add_argument("--nnunet-base-features", type=at.positive_int, default=None, metavar="N",
                   help="features of nnU-Net's first stage (default: nnU-Net's 32); 16 is the half-width network, "
                        "about 4x cheaper, for CPU runs; every strategy gets the same")
    p.add_argument("--nnunet-fold", type=at.fold, default=None,
                   help="0-4, or `all`: train on every training case without a held-out validation case (a run with "
                        "few real cases); default 0")
    p.add_argument("--nnunet-step-size", type=at.positive_float, default=None, metavar="F",
                   help="sliding-window step of the test predictions, as a fraction of the patch (default: nnU-Net's "
                        "0.5; 1.0 predicts each voxel once, faster)")
    p.add_argument("--nnunet-seed-offset", type=at.seed, default=None, metavar="K",
                   help="train nnU-Net with seed + K: a repeat of the same run that measures the run-to-run spread "
                        "(default 0)")
    p.add_argument("--qc-model", type=at.input_path, default=None, metavar="FOLDER",
                   help="a trained Real nnU-Net model folder for quality control's NodeRecall rule, for a run that "
                        "trains no Real model itself (default: the run's own Real model)")
    p.add_argument("--ddpm-iterations", type=at.positive_int, default=None, help="LN-DDPM training iterations")
    add_sampling(p)
    p.add_argument("--synt-per-case", type=at.positive_int, default=None, help=SYNT_PER_CASE_HELP)
    p.add_argument("--strategies", nargs="+", choices=PIPELINE_STRATEGIES, default=None, metavar="STRATEGY",
                   help=f"nnU-Net training sets, of {', '.join(PIPELINE_STRATEGIES)} (default: real real+synt; "
                        "real+copypaste: real nodes pasted into other fat positions, the same number of cases per "
                        "real case as real+synt; real+inct: LN-DDPM nodes synthesized into the real CTs at the "
                        "copy-paste positions; synt is the Synt-only training of paper 000 Tables 3-4; synt>real: "
                        "nnU-Net pretrained on Synt, then fine-tuned on Real, half the epochs each)")
    p.add_argument("--nnunet-real-share", type=real_share_arg, default=None, metavar="{R,uniform}",
                   help="share of the cases nnU-Net draws that are real where real and synthetic cases are mixed "
                        f"(default {DEFAULT_REAL_SHARE}; `uniform`: nnU-Net's own uniform draw over cases)")
    p.add_argument("--nnunet-own-plans", action="store_true",
                   help="plan every dataset on its own cases instead of giving every strategy the plan of the real "
                        "cases (network, patch and intensity normalization)")
    add_qc(p, qc_default, "after sampling (with the Real model's NodeRecall when Real is trained), before the "
                          "synthetic strategies are exported; off in paper-scale runs, as paper 000 filters nothing")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one LN-DDPM config value, e.g. --set network.variant=med_ddpm (repeatable); "
                        "report rows are labelled with the variant")
    p.add_argument("--seed", type=at.seed, default=0)
    p.add_argument("--lpips-weights", default=None, help="MedicalNet resnet_10_23dataset.pth (file or folder)")


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="the whole pipeline on the embedded phantom (minutes on a CPU)")
    _common(demo, True)
    demo.add_argument("--train-cases", type=at.positive_int, default=6)
    demo.add_argument("--test-cases", type=at.positive_int, default=2)
    demo.set_defaults(func=run_demo)

    run = sub.add_parser("run", help="the whole pipeline on your prepared cases")
    _common(run, None)
    run.add_argument("--cases", type=at.input_path, help="prepared training cases (`lnsynth prepare`)")
    run.add_argument("--test-cases", type=at.input_path, help="prepared held-out test cases")
    run.add_argument("--raw-cases", type=at.input_path, help="unprepared training cases: <case>/{ct,ln[,anatomy|totalseg]}.nii.gz")
    run.add_argument("--raw-test-cases", type=at.input_path, help="unprepared held-out test cases, same layout")
    add_config(run)
    add_anatomy_opt_outs(run)
    run.set_defaults(func=run_user, outputs_apart={"out": ("cases", "test_cases", "raw_cases", "raw_test_cases")})


def _apply(settings: PipelineSettings, args: argparse.Namespace) -> PipelineSettings:
    changes = {"device": args.device, "seed": args.seed, "lpips_weights": args.lpips_weights}
    if args.qc is not None:
        changes["qc"] = args.qc
    if args.paste:
        changes["paste_variant"] = True
    if args.nnunet_real_share is not None:
        changes["nnunet_real_share"] = None if args.nnunet_real_share == UNIFORM else args.nnunet_real_share
    if args.nnunet_own_plans:
        changes["nnunet_shared_plan"] = False
    if args.strategies:
        changes["strategies"] = tuple(dict.fromkeys(args.strategies))
    for key in ("nnunet_epochs", "nnunet_iterations", "synt_per_case", "nnunet_patience", "nnunet_min_delta",
                "nnunet_base_features", "nnunet_step_size", "nnunet_seed_offset", "nnunet_fold"):
        if getattr(args, key) is not None:
            changes[key] = getattr(args, key)
    if args.qc_model is not None:
        changes["qc_real_model"] = args.qc_model
    if changes.get("nnunet_epochs") == STANDARD:
        changes["nnunet_epochs"] = None
    if args.nnunet_patch_size is not None:
        if any(args.nnunet_patch_size) and not all(args.nnunet_patch_size):
            from LNSynthLib.errors import UsageError

            raise UsageError(f"argument --nnunet-patch-size: {args.nnunet_patch_size} mixes 0 with sizes",
                             fix="give three sizes >= 1 (e.g. 32 32 32), or 0 0 0 for nnU-Net's planned patch")
        changes["nnunet_patch_size"] = tuple(args.nnunet_patch_size) if any(args.nnunet_patch_size) else None
    if changes.get("nnunet_patience") is not None and changes.get("nnunet_epochs", settings.nnunet_epochs) is None:
        from LNSynthLib.errors import UsageError

        raise UsageError("argument --nnunet-patience: plateau stopping needs a max-epoch budget",
                         fix="give --nnunet-epochs (the most epochs any strategy may train) with --nnunet-patience")
    from LNSynthLib.cli.train_command import parse_overrides

    overrides = {**parse_overrides(args.overrides), **sampling_overrides(args)}
    if args.ddpm_iterations is not None:
        overrides["train.iterations"] = args.ddpm_iterations
    if overrides:
        changes["ddpm_overrides"] = {**settings.ddpm_overrides, **overrides}
    changed = replace(settings, **changes)
    if args.overrides:
        from LNSynthLib.pipeline import ddpm_config

        ddpm_config(changed)   # a bad --set key or value stops here, before any work
    return changed


def _print_report(report: Path) -> None:
    """The differences to Real with their confidence intervals, then where the report is."""
    from LNSynthLib.report.confidence import summary_lines

    print("\n".join(summary_lines(report.parent / "metrics.json")))
    print(f"report: {report}")


def run_demo(args: argparse.Namespace) -> int:
    settings = _apply(PipelineSettings.demo(n_train_cases=args.train_cases, n_test_cases=args.test_cases), args)
    _print_report(run_pipeline(args.out, settings))
    return 0


def user_settings(args: argparse.Namespace) -> PipelineSettings:
    """`lnsynth run`'s settings: the chosen config's pipeline sizes with the command-line changes.

    `tiny` gets the demo's CPU sizes; every other config (paper, paper-bf16, paper002, your own YAML)
    paper 000's: nnU-Net's standard trainer, 10x, no quality control, the paper's anatomy guards.
    """
    config = chosen_config(args)
    base = PipelineSettings.demo() if config == "tiny" else PipelineSettings.paper(ddpm_config=config)
    return anatomy_opt_outs(_apply(base, args), args)


def run_user(args: argparse.Namespace) -> int:
    from LNSynthLib.errors import InputDataError
    from LNSynthLib.pipeline import prepare_raw_cases

    settings = user_settings(args)
    cases, test_cases = args.cases, args.test_cases
    if args.raw_cases and args.raw_test_cases:
        from LNSynthLib.prepare_raw import find_raw_ct
        from LNSynthLib.segmentation.leakage import check_raw_disjoint

        check_raw_disjoint(args.raw_cases, args.raw_test_cases, find_raw_ct)
    if args.raw_cases:
        cases = prepare_raw_cases(args.raw_cases, Path(args.out) / "prepared" / "train", device=args.device,
                                  settings=settings)
    if args.raw_test_cases:
        test_cases = prepare_raw_cases(args.raw_test_cases, Path(args.out) / "prepared" / "test",
                                       device=args.device, settings=settings)
    if cases is None or test_cases is None:
        raise InputDataError("no training or test cases given",
                             fix="pass --cases and --test-cases (prepared) or --raw-cases and --raw-test-cases")
    _print_report(run_pipeline(args.out, settings, cases=cases, test_cases=test_cases))
    return 0
