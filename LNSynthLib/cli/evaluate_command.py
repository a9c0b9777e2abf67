"""`lnsynth evaluate`: segmentation table (paper 000 Table 2), generation metrics and figures → report.md."""

from __future__ import annotations

import argparse
from pathlib import Path

from LNSynthLib.cli import arg_types as at
from LNSynthLib.cli.options import add_device
from LNSynthLib.devices import nnunet_device
from LNSynthLib.errors import InputDataError
from LNSynthLib.jobs.results import emit_result


def register(sub: argparse._SubParsersAction) -> None:
    from LNSynthLib.metrics.segmentation import ASSD_FORMS
    from LNSynthLib.report.organ_eval import ORGAN_DICE_MODES

    p = sub.add_parser("evaluate", help="metrics of both papers + figures -> report.md, metrics.json")
    p.add_argument("--out", required=True, type=at.output_dir, help="report folder")
    p.add_argument("--work", help="a work folder of `lnsynth demo`/`run`: evaluate everything it holds")
    p.add_argument("--labels", help="ground-truth label folder (nnU-Net labelsTs)")
    p.add_argument("--images", help="test image folder (imagesTs) for the segmentation figure")
    p.add_argument("--pred", action="append", default=[], metavar="STRATEGY|METHOD=DIR",
                   help="predictions of one strategy, e.g. 'Real|-=preds/real' (repeat)")
    p.add_argument("--real", help="prepared real cases (for generation metrics and the mosaic)")
    p.add_argument("--test-cases", help="prepared test cases (the report states their anatomy source)")
    p.add_argument("--synthetic", help="synthetic cases written by `lnsynth sample`")
    p.add_argument("--ddpm-run", help="LN-DDPM run folder (loss.csv)")
    p.add_argument("--real-model", help="nnU-Net model trained on real data only (NodeRecall_synt)")
    p.add_argument("--lpips-weights", help="MedicalNet resnet_10_23dataset.pth (file or folder)")
    p.add_argument("--fid-weights", help="MedicalNet resnet_10_23dataset.pth for FID (default: --lpips-weights)")
    p.add_argument("--generation-limit", type=at.positive_int, metavar="N",
                   help="generation metrics and organ Dice on the first N synthetic cases only (default: all)")
    p.add_argument("--organ-dice", choices=ORGAN_DICE_MODES, default=ORGAN_DICE_MODES[0],
                   help="paper 002's per-organ Dice of TotalSegmentator on the synthetic images: auto = when its "
                        "weights are installed (never downloaded), off")
    p.add_argument("--weights-dir", help="TotalSegmentator home folder with its weights (TOTALSEG_HOME_DIR)")
    p.add_argument("--full-resolution", action="store_true",
                   help="organ Dice with TotalSegmentator's 1.5 mm models instead of the fast 3 mm one")
    p.add_argument("--assd-form", choices=ASSD_FORMS, default=ASSD_FORMS[0],
                   help="ASSD definition: directed-means (mean of the two directed means, medpy <= 0.4) or "
                        "pooled (all distances in one mean, medpy >= 0.5)")
    add_device(p, "for nnU-Net prediction")
    p.set_defaults(func=run_evaluate, outputs_apart={"out": ("work", "labels", "images", "real",
                                                             "test_cases", "synthetic", "ddpm_run")})


def _prediction_sets(args: argparse.Namespace) -> list:
    from LNSynthLib.report.report import PredictionSet

    sets = []
    for spec in args.pred:
        label, _, folder = spec.partition("=")
        strategy, _, method = label.partition("|")
        if not folder or not strategy:
            raise InputDataError(f"--pred {spec!r} is not STRATEGY|METHOD=DIR", fix="e.g. --pred 'Real|-=preds/real'")
        sets.append(PredictionSet(strategy, method or "-", Path(folder)))
    return sets


def run_method(ddpm_run: str | Path | None) -> str:
    """The method label of an LN-DDPM run folder: its config.yaml's variant (`LN-DDPM` without one)."""
    from LNSynthLib.diffusion.choices import method_label

    config = Path(ddpm_run) / "config.yaml" if ddpm_run else None
    if config is None or not config.is_file():
        return method_label("ln_ddpm")
    from LNSynthLib.diffusion.config import load_config

    return method_label(load_config(str(config)).network.variant)


def run_evaluate(args: argparse.Namespace) -> int:
    from LNSynthLib.report.generation_eval import evaluate_generation
    from LNSynthLib.report.report import EvaluationInputs, PredictionSet, write_report

    device = nnunet_device(args.device)
    sets = _prediction_sets(args)
    labels, images = args.labels, args.images
    real, synthetic, ddpm_run, real_model = args.real, args.synthetic, args.ddpm_run, args.real_model
    test_cases = args.test_cases
    if args.work:
        from LNSynthLib.pipeline import Layout
        from LNSynthLib.segmentation.nnunet.datasets import DATASETS
        from LNSynthLib.segmentation.nnunet.project import NnUNetProject, dataset_name, model_of

        layout = Layout(Path(args.work).resolve())
        project = NnUNetProject(layout.nnunet)
        variant = run_method(args.ddpm_run or layout.ddpm_run)
        for row in DATASETS:
            pred = layout.predictions / row.name
            if pred.is_dir():
                fold = next(iter(project.fold_dirs(dataset_name(row.dataset_id, row.name))), None)
                sets.append(PredictionSet(row.strategy_label, row.method.replace("LN-DDPM", variant, 1), pred, fold))
                if row.strategy == "real" and fold is not None:
                    real_model = real_model or str(model_of(fold))
        folders = [project.raw_dataset(row.dataset_id, row.name) for row in DATASETS]
        exported = [folder for folder in folders if folder.is_dir()]
        test_set = exported[0] if exported else folders[0]   # all hold the same test cases (Real's is first)
        labels = labels or str(test_set / "labelsTs")
        images = images or str(test_set / "imagesTs")
        real, synthetic = real or str(layout.train_cases), synthetic or str(layout.synthetic)
        test_cases = test_cases or str(layout.test_cases)
        ddpm_run = ddpm_run or str(layout.ddpm_run)
    if not labels or not sets:
        raise InputDataError("nothing to evaluate", fix="pass --work DIR, or --labels DIR and at least one --pred")
    generation = None
    if real and synthetic and Path(synthetic).is_dir():
        generation = evaluate_generation(real, synthetic, work_dir=Path(args.out) / "work",
                                         lpips_weights=args.lpips_weights, real_model=real_model, device=device,
                                         limit=args.generation_limit, fid_weights=args.fid_weights,
                                         organ_dice=args.organ_dice,
                                         totalseg_weights_dir=args.weights_dir,
                                         totalseg_fast=not args.full_resolution,
                                         method=run_method(ddpm_run))
    inputs = EvaluationInputs(Path(args.out), Path(labels), sets, images_dir=Path(images) if images else None,
                              real_root=Path(real) if real else None,
                              test_root=Path(test_cases) if test_cases else None,
                              synthetic_root=Path(synthetic) if synthetic else None,
                              ddpm_run=Path(ddpm_run) if ddpm_run else None, generation=generation,
                              assd_form=args.assd_form)
    report, metrics = write_report(inputs)
    from LNSynthLib.report.confidence import summary_lines

    print("\n".join(summary_lines(metrics)))
    emit_result("report", report, metrics=str(metrics))
    print(f"report: {report}")
    return 0
