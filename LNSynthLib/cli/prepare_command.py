"""`lnsynth prepare`: one CT + LN mask -> a prepared case (anatomy, LN-region crop, 1 mm grid)."""

from __future__ import annotations

import argparse

from LNSynthLib.cli import arg_types as at
from LNSynthLib.cli.options import add_anatomy_source
from LNSynthLib.jobs.results import emit_result
from LNSynthLib.volumes.preprocess import TEST_MARGIN_MM, TRAIN_MARGIN_MM


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="prepare one CT + lymph-node mask for LN-DDPM (crop, 1 mm, anatomy map)")
    p.add_argument("--ct", required=True, type=at.input_path, help="CT: NIfTI, NRRD, MHA or a DICOM series folder")
    p.add_argument("--ln", required=True, type=at.input_path, help="lymph-node mask (0 = background) on the CT grid, or the same voxels "
                                              "in another axis order/direction (see --resample-labels)")
    add_anatomy_source(p, "--anatomy", "auto")
    p.add_argument("--out", required=True, type=at.output_dir, help="root folder of prepared cases")
    p.add_argument("--case-id", required=True, type=at.plain_name, help="name of the case folder")
    p.add_argument("--margin-mm", type=at.positive_float, default=TRAIN_MARGIN_MM,
                   help=f"margin around the nodes ({TRAIN_MARGIN_MM:g} mm for training, {TEST_MARGIN_MM:g} mm for "
                        "test cases)")
    p.add_argument("--spacing", type=at.positive_float, default=1.0, help="isotropic output spacing in mm (default 1.0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing case of the same id")
    p.set_defaults(func=run, outputs_apart={"out": ("ct", "ln", "anatomy")})


def run(args: argparse.Namespace) -> int:
    from LNSynthLib.prepare import prepare_case
    from LNSynthLib.volumes.preprocess import PreprocessSettings

    settings = PreprocessSettings(margin_mm=args.margin_mm, spacing=args.spacing)
    folder = prepare_case(args.ct, args.ln, args.out, args.case_id, anatomy_path=args.anatomy,
                          anatomy_source=args.anatomy_source, labels_kind=args.labels_kind,
                          resample_labels=args.resample_labels, settings=settings, overwrite=args.overwrite,
                          device=args.device, weights_dir=args.weights_dir, fast=not args.full_resolution,
                          label_filter=args.label_filter)
    emit_result("case", folder)
    print(f"prepared case: {folder}")
    return 0
