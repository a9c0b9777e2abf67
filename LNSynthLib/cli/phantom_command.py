"""`lnsynth phantom`: write prepared phantom cases (the embedded demo data) and/or the phantom-vs-real figure."""

from __future__ import annotations

import argparse
from pathlib import Path

from LNSynthLib.cli import arg_types as at
from LNSynthLib.jobs.results import emit_result
from LNSynthLib.volumes.preprocess import TRAIN_MARGIN_MM

# The figures compare the phantom with real CTs the user names: none ships with the package.
REAL_OPTIONS = {"figure": ("real_ct", "real_labels"),
                "realism_figure": ("real_ct", "real_labels", "real_hires_ct", "real_hires_labels")}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("phantom", help="write seeded phantom CT cases, already prepared (1 mm, LN-region crop)")
    p.add_argument("--out", type=at.output_dir, help="folder to write phantom_000, phantom_001, ... into")
    p.add_argument("--cases", type=at.positive_int, default=4, help="number of cases (default 4)")
    p.add_argument("--seed", type=at.seed, default=0, help="seed of the first case; case i uses seed+i")
    p.add_argument("--shape", type=at.positive_int, nargs=3, metavar=("Z", "Y", "X"), default=(96, 128, 128),
                   help="phantom size in voxels before preparation (default 96 128 128)")
    p.add_argument("--spacing", type=at.positive_float, nargs="+", default=[1.0], metavar="MM",
                   help="phantom voxel spacing in mm: one value, or three (x y z); default 1.0")
    p.add_argument("--margin-mm", type=at.positive_float, default=TRAIN_MARGIN_MM,
                   help=f"LN-region crop margin (default {TRAIN_MARGIN_MM:g} = training)")
    p.add_argument("--overwrite", action="store_true", help="replace existing phantom cases")
    p.add_argument("--figure", type=at.output_png, metavar="PNG", help="also write the phantom-vs-real anatomy figure to PNG")
    p.add_argument("--real-ct", help="real CT for the figures (e.g. TotalSegmentator's example_ct.nii.gz)")
    p.add_argument("--real-labels", help="its TotalSegmentator 'total' labels or 14-label anatomy map")
    p.add_argument("--realism-figure", type=at.output_png, metavar="PNG",
                   help="also write the phantom-vs-real CT figure (W400/L40, lymph nodes outlined) to PNG, "
                        "e.g. Resources/phantom_vs_real.png")
    p.add_argument("--real-hires-ct", help="a real CT at about 0.8 mm for the realism figure (file or DICOM folder, "
                                           "e.g. dcmqi's 3-slice series); --real-ct is shown too")
    p.add_argument("--real-hires-labels", help="its label file (label 2 = spine, used to centre the zoomed panel)")
    p.add_argument("--realism-shape", type=at.positive_int, nargs=3, metavar=("Z", "Y", "X"),
                   help="phantom grid of the realism figure, at 0.8×0.8×1.5 mm (default 300 512 512, "
                        "the size the prepare benchmark uses)")
    p.set_defaults(func=run, outputs_apart={key: ("real_ct", "real_labels", "real_hires_ct", "real_hires_labels")
                                            for key in ("figure", "realism_figure")})


def run(args: argparse.Namespace) -> int:
    from LNSynthLib.errors import InputDataError
    from LNSynthLib.phantom import write_phantom_cases
    from LNSynthLib.volumes.preprocess import PreprocessSettings

    if not args.out and not args.figure and not args.realism_figure:
        raise InputDataError("nothing to do",
                             fix="give --out FOLDER to write cases and/or --figure PNG / --realism-figure PNG")
    if len(args.spacing) not in (1, 3):
        raise InputDataError(f"--spacing takes 1 or 3 values, got {len(args.spacing)}",
                             fix="e.g. --spacing 1.0 or --spacing 0.8 0.8 2.5")
    spacing = tuple(args.spacing * 3) if len(args.spacing) == 1 else tuple(args.spacing)
    for figure, needed in REAL_OPTIONS.items():
        missing = [f"--{name.replace('_', '-')}" for name in needed if getattr(args, figure) and not getattr(args, name)]
        if missing:
            raise InputDataError(f"--{figure.replace('_', '-')} compares the phantom with real CTs: "
                                 f"{', '.join(missing)} not given",
                                 fix=f"name the real CT files with {' '.join(m + ' FILE' for m in missing)}")
    if args.out:
        folders = write_phantom_cases(args.out, args.cases, seed=args.seed, shape_zyx=tuple(args.shape),
                                      spacing_xyz=spacing, overwrite=args.overwrite,
                                      settings=PreprocessSettings.train(margin_mm=args.margin_mm))
        print(f"wrote {len(folders)} phantom case(s) to {args.out}")
    figures = []
    if args.figure:
        from LNSynthLib.phantom.figure import make_readme_figure

        figures.append(make_readme_figure(args.figure, args.real_ct, args.real_labels, seed=args.seed,
                                          overwrite=args.overwrite))
        print(f"figure: {figures[-1]}")
    if args.realism_figure:
        from LNSynthLib.phantom.figure import realism_figure

        real = [(Path(args.real_hires_ct).name, args.real_hires_ct, args.real_hires_labels),
                (Path(args.real_ct).name, args.real_ct, args.real_labels)]
        grid = {"shape_zyx": tuple(args.realism_shape)} if args.realism_shape else {}
        figures.append(realism_figure(args.realism_figure, real, seed=args.seed, overwrite=args.overwrite, **grid))
        print(f"realism figure: {figures[-1]}")
    if args.out:
        emit_result("cases", Path(args.out).resolve(), cases=[f.name for f in folders],
                    figure=str(figures[0]) if figures else None, figures=[str(f) for f in figures])
    else:
        emit_result("figure", figures[0], figures=[str(f) for f in figures])
    return 0
