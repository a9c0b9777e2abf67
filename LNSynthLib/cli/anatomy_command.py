"""`lnsynth anatomy`: write the 14-label anatomy map of a CT (TotalSegmentator, existing labels, or coarse)."""

from __future__ import annotations

import argparse

from LNSynthLib.cli import arg_types as at
from LNSynthLib.cli.options import add_anatomy_source


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("anatomy", help="write the 14-label anatomy map that conditions LN-DDPM")
    p.add_argument("--ct", required=True, type=at.input_path, help="CT: NIfTI, NRRD, MHA or a DICOM series folder")
    p.add_argument("--out", required=True, type=at.output_volume, help="output label map (.nii.gz, .nrrd, ...)")
    add_anatomy_source(p, "--labels", "totalseg")
    # Former spellings, hidden: --method totalseg|coarse|labels, --labels-source.
    p.add_argument("--method", dest="anatomy_source", choices=["totalseg", "coarse", "labels"],
                   default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument("--labels-source", dest="labels_kind", choices=["auto", "totalseg", "anatomy14"],
                   default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=run, outputs_apart={"out": ("ct", "labels")})


def run(args: argparse.Namespace) -> int:
    from LNSynthLib.anatomy.build import build_anatomy
    from LNSynthLib.atomic import check_writable
    from LNSynthLib.jobs.results import emit_result
    from LNSynthLib.volumes.io import read_patient_ct, write_volume

    check_writable(args.out, args.overwrite)
    ct = read_patient_ct(args.ct)
    anatomy, used = build_anatomy(ct, args.ct, args.labels, args.anatomy_source, labels_kind=args.labels_kind,
                                  resample_labels=args.resample_labels, device=args.device,
                                  weights_dir=args.weights_dir, fast=not args.full_resolution,
                                  label_filter=args.label_filter)
    write_volume(anatomy, args.out, overwrite=args.overwrite)
    emit_result("anatomy", args.out, source=used, coarse=used == "coarse")
    print(f"anatomy map: {args.out}")
    return 0
