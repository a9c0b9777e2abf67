"""`lnsynth anatomy`: write the 14-label anatomy map of a CT (TotalSegmentator, existing labels, or coarse)."""

from __future__ import annotations

import argparse
import sys

from LNSynthLib.cli import arg_types as at


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("anatomy", help="write the 14-label anatomy map that conditions LN-DDPM")
    p.add_argument("--ct", required=True, type=at.input_path, help="CT: NIfTI, NRRD, MHA or a DICOM series folder")
    p.add_argument("--out", required=True, type=at.output_volume, help="output label map (.nii.gz, .nrrd, ...)")
    p.add_argument("--method", default="totalseg", choices=["totalseg", "coarse", "labels"],
                   help="totalseg: run TotalSegmentator (weights needed, offline); coarse: weights-free "
                        "thresholds; labels: group an existing label file (--labels)")
    p.add_argument("--labels", type=at.input_path, help="TotalSegmentator 'total' output or 14-label map (for --method labels)")
    p.add_argument("--labels-source", default="auto", choices=["auto", "totalseg", "anatomy14"],
                   help="kind of --labels file (auto: guessed from its values)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "gpu"])
    p.add_argument("--weights-dir", help="TotalSegmentator home folder with its weights (TOTALSEG_HOME_DIR)")
    p.add_argument("--full-resolution", action="store_true",
                   help="TotalSegmentator's 1.5 mm models (Tasks 291-295) instead of the fast 3 mm model")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from LNSynthLib.anatomy.build import anatomy_from_labels, guess_source
    from LNSynthLib.anatomy.fallback import COARSE_WARNING, coarse_anatomy
    from LNSynthLib.anatomy.totalseg import check_weights, run_totalsegmentator
    from LNSynthLib.atomic import check_writable
    from LNSynthLib.errors import InputDataError
    from LNSynthLib.jobs.progress import emit_event
    from LNSynthLib.volumes.io import read_ct, read_volume, write_volume

    check_writable(args.out, args.overwrite)
    ct = read_ct(args.ct)
    if args.method == "labels":
        if not args.labels:
            raise InputDataError("--method labels needs --labels FILE", path=args.ct,
                                 fix="give the TotalSegmentator output or 14-label map with --labels")
        labels = read_volume(args.labels)
        source = guess_source(labels, args.labels) if args.labels_source == "auto" else args.labels_source
        anatomy = anatomy_from_labels(labels, ct, source, path=args.labels, ct_path=args.ct)
    elif args.method == "coarse":
        print(f"lnsynth: warning: {COARSE_WARNING}", file=sys.stderr)
        anatomy = coarse_anatomy(ct)
    else:
        fast = not args.full_resolution
        check_weights(args.weights_dir, fast)
        with tempfile.TemporaryDirectory(prefix="lnsynth_ts_") as tmp:
            out = run_totalsegmentator(args.ct, Path(tmp) / "total.nii.gz", device=args.device, fast=fast,
                                       weights_dir=args.weights_dir)
            anatomy = anatomy_from_labels(read_volume(out), ct, "totalseg", path=out, ct_path=args.ct)
    write_volume(anatomy, args.out, overwrite=args.overwrite)
    emit_event("anatomy", path=str(args.out), method=args.method, coarse=args.method == "coarse")
    print(f"anatomy map: {args.out}")
    return 0
