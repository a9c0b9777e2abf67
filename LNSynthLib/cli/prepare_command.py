"""`lnsynth prepare`: one CT + LN mask -> a prepared case (anatomy, LN-region crop, 1 mm grid)."""

from __future__ import annotations

import argparse

from LNSynthLib.cli import arg_types as at
from LNSynthLib.jobs.progress import emit_event


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="prepare one CT + lymph-node mask for LN-DDPM (crop, 1 mm, anatomy map)")
    p.add_argument("--ct", required=True, type=at.input_path, help="CT: NIfTI, NRRD, MHA or a DICOM series folder")
    p.add_argument("--ln", required=True, type=at.input_path, help="lymph-node mask on the CT grid (0 = background)")
    p.add_argument("--anatomy", type=at.input_path, help="TotalSegmentator 'total' output or a 14-label anatomy map on the CT grid")
    p.add_argument("--anatomy-source", default="auto",
                   choices=["auto", "totalseg", "anatomy14", "coarse", "run-totalseg"],
                   help="where the anatomy comes from; auto: --anatomy if given (kind guessed from its labels), "
                        "else TotalSegmentator if its weights are installed, else the coarse threshold fallback")
    p.add_argument("--out", required=True, type=at.output_dir, help="root folder of prepared cases")
    p.add_argument("--case-id", required=True, help="name of the case folder")
    p.add_argument("--margin-mm", type=at.positive_float, default=100.0,
                   help="margin around the nodes (100 mm for training, 50 mm for test cases)")
    p.add_argument("--spacing", type=at.positive_float, default=1.0, help="isotropic output spacing in mm (default 1.0)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "gpu"], help="for TotalSegmentator")
    p.add_argument("--weights-dir", help="TotalSegmentator home folder with its weights (TOTALSEG_HOME_DIR)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing case of the same id")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from LNSynthLib.prepare import prepare_case
    from LNSynthLib.volumes.preprocess import PreprocessSettings

    settings = PreprocessSettings(margin_mm=args.margin_mm, spacing=args.spacing)
    folder = prepare_case(args.ct, args.ln, args.out, args.case_id, anatomy_path=args.anatomy,
                          anatomy_source=args.anatomy_source, settings=settings, overwrite=args.overwrite,
                          device=args.device, weights_dir=args.weights_dir)
    emit_event("prepared", case=str(folder))
    print(f"prepared case: {folder}")
    return 0
