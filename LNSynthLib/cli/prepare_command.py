"""`lnsynth prepare`: one CT + LN mask -> a prepared case (anatomy, LN-region crop, 1 mm grid).

With `--raw-cases DIR` it prepares a folder of case folders instead (`prepare_raw.py`): resumable,
and sharded with `--shard i/n` as `lnsynth sample` is, so an array of processes shares the folder.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from LNSynthLib.cli import arg_types as at
from LNSynthLib.cli.options import add_anatomy_source
from LNSynthLib.errors import UsageError
from LNSynthLib.jobs.results import emit_result
from LNSynthLib.shards import parse_shard
from LNSynthLib.volumes.preprocess import TEST_MARGIN_MM, TRAIN_MARGIN_MM

if TYPE_CHECKING:
    from LNSynthLib.volumes.preprocess import PreprocessSettings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="prepare one CT + lymph-node mask for LN-DDPM (crop, 1 mm, anatomy map), "
                                       "or a folder of them (--raw-cases, shardable)")
    p.add_argument("--ct", type=at.input_path, help="CT: NIfTI, NRRD, MHA or a DICOM series folder")
    p.add_argument("--ln", type=at.input_path, help="lymph-node mask (0 = background) on the CT grid, or the same voxels "
                                              "in another axis order/direction (see --resample-labels)")
    add_anatomy_source(p, "--anatomy", "auto")
    p.add_argument("--out", type=at.output_dir, help="root folder of prepared cases")
    p.add_argument("--case-id", type=at.plain_name, help="name of the case folder")
    p.add_argument("--raw-cases", type=at.input_path, metavar="DIR",
                   help="instead of --ct/--ln/--case-id: a folder of case folders <case>/{ct,ln[,anatomy]}.nii.gz, "
                        "each prepared into --out/<case>; complete cases are skipped on a rerun")
    p.add_argument("--shard", default="0/1",
                   help="with --raw-cases, i/n: this process does cases i, i+n, ... (torchrun: by rank)")
    p.add_argument("--margin-mm", type=at.positive_float, default=TRAIN_MARGIN_MM,
                   help=f"margin around the nodes ({TRAIN_MARGIN_MM:g} mm for training, {TEST_MARGIN_MM:g} mm for "
                        "test cases)")
    p.add_argument("--spacing", type=at.positive_float, default=1.0, help="isotropic output spacing in mm (default 1.0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing case of the same id")
    p.set_defaults(func=run, outputs_apart={"out": ("ct", "ln", "anatomy", "raw_cases")})


def _check_mode(args: argparse.Namespace) -> None:
    """One case (--ct, --ln, --case-id) or a folder of them (--raw-cases), never a mix of the two."""
    single = {"--ct": args.ct, "--ln": args.ln, "--case-id": args.case_id}
    if args.raw_cases is not None:
        mixed = [flag for flag, value in {**single, "--anatomy": args.anatomy}.items() if value is not None]
        if mixed:
            raise UsageError(f"{', '.join(mixed)} is for one case; --raw-cases takes each from its case folder",
                             fix="leave it out, or put the file in the case folder (e.g. <case>/anatomy.nii.gz)")
        single = {}
    missing = [flag for flag, value in {**single, "--out": args.out}.items() if value is None]
    if missing:
        raise UsageError(f"the following arguments are required: {', '.join(missing)}",
                         fix="give --ct, --ln and --case-id for one case, or --raw-cases DIR for a folder of cases")
    if args.raw_cases is None and args.shard != "0/1":
        raise UsageError("--shard is for --raw-cases", fix="leave it out, or prepare a folder with --raw-cases")


def run(args: argparse.Namespace) -> int:
    from LNSynthLib.prepare import prepare_case
    from LNSynthLib.volumes.preprocess import PreprocessSettings

    _check_mode(args)
    shard = parse_shard(args.shard)
    settings = PreprocessSettings(margin_mm=args.margin_mm, spacing=args.spacing)
    if args.raw_cases is not None:
        return _run_folder(args, settings, shard)
    folder = prepare_case(args.ct, args.ln, args.out, args.case_id, anatomy_path=args.anatomy,
                          anatomy_source=args.anatomy_source, labels_kind=args.labels_kind,
                          resample_labels=args.resample_labels, settings=settings, overwrite=args.overwrite,
                          device=args.device, weights_dir=args.weights_dir, fast=not args.full_resolution,
                          label_filter=args.label_filter)
    emit_result("case", folder)
    print(f"prepared case: {folder}")
    return 0


def _run_folder(args: argparse.Namespace, settings: PreprocessSettings, shard: tuple[int, int]) -> int:
    from LNSynthLib.prepare_raw import prepare_raw_folder

    folders = prepare_raw_folder(args.raw_cases, args.out, shard=shard, overwrite=args.overwrite,
                                 anatomy_source=args.anatomy_source, labels_kind=args.labels_kind,
                                 resample_labels=args.resample_labels, settings=settings, device=args.device,
                                 weights_dir=args.weights_dir, fast=not args.full_resolution,
                                 label_filter=args.label_filter)
    emit_result("cases", args.out, count=len(folders), shard=args.shard)
    print(f"prepared cases: {len(folders)} of shard {args.shard} in {args.out}")
    return 0
