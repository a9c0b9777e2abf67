"""`lnsynth nnunet export|train|predict`: nnU-Net v2 datasets, training and prediction for LN segmentation."""

from __future__ import annotations

import argparse
from pathlib import Path

from LNSynthLib.cli import arg_types as at
from LNSynthLib.cli.options import SYNT_PER_CASE_HELP, add_device, add_qc
from LNSynthLib.devices import nnunet_device
from LNSynthLib.jobs.results import emit_result
from LNSynthLib.volumes.preprocess import TEST_MARGIN_MM, TRAIN_MARGIN_MM


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("nnunet", help="nnU-Net v2: export datasets, train, predict")
    steps = parser.add_subparsers(dest="nnunet_step", required=True, metavar="STEP")

    exp = steps.add_parser("export", help="prepared real (+ synthetic) cases -> an nnU-Net raw dataset")
    exp.add_argument("--cases", required=True, type=at.input_path, help="folder of prepared real training cases")
    exp.add_argument("--synthetic", type=at.input_path, help="folder of synthetic cases written by `lnsynth sample`")
    exp.add_argument("--test-cases", type=at.input_path, help="folder of prepared real test cases (imagesTs/labelsTs)")
    exp.add_argument("--out", required=True, type=at.output_dir, help="nnU-Net project folder (gets nnUNet_raw/...)")
    exp.add_argument("--dataset-id", type=at.dataset_id, default=501)
    exp.add_argument("--name", type=at.plain_name, default=None,
                     help="dataset name, a plain folder name (default from the strategy)")
    exp.add_argument("--strategy", choices=["real", "synt", "real+synt"], default=None,
                     help="default: real+synt with --synthetic, else real")
    exp.add_argument("--synt-per-case", type=at.positive_int, default=None, help=f"{SYNT_PER_CASE_HELP}; default: all there are")
    exp.add_argument("--paste", action="store_true", help="paste synthetic patches into their source CT")
    exp.add_argument("--blend-mm", type=at.non_negative_float, default=4.0)
    exp.add_argument("--train-margin-mm", type=at.positive_float, default=TRAIN_MARGIN_MM)
    exp.add_argument("--test-margin-mm", type=at.positive_float, default=TEST_MARGIN_MM)
    exp.add_argument("--overwrite", action="store_true")
    add_qc(exp, True, "leave out the synthetic cases that --synthetic's qc.json rejects (written by "
                      "`lnsynth sample --qc` or the pipeline; without qc.json every case is exported)")
    exp.set_defaults(func=run_export, outputs_apart={"out": ("cases", "synthetic", "test_cases")})

    tr = steps.add_parser("train", help="plan/preprocess and train nnU-Net (resumes)")
    tr.add_argument("--dataset", "--project", dest="project", required=True, help="nnU-Net project folder")
    tr.add_argument("--dataset-id", type=at.dataset_id, default=None, help="default: the only dataset in the project")
    tr.add_argument("--epochs", type=at.positive_int, default=None,
                    help="short trainer with this many epochs (default: nnU-Net's standard trainer)")
    tr.add_argument("--iterations", type=at.positive_int, default=10, help="iterations per epoch of the short trainer")
    tr.add_argument("--val-iterations", type=at.positive_int, default=2)
    tr.add_argument("--real-share", type=at.real_share, default=None, metavar="R",
                    help="draw this share of every batch's cases from the real cases when the dataset mixes real and "
                         "synthetic ones (e.g. 0.5); default: nnU-Net's uniform draw over cases")
    tr.add_argument("--fold", default=None, type=at.fold,
                    help="0-4 or `all` (default: 0; `all` when the dataset has one source case, which has no "
                         "train/validation split)")
    tr.add_argument("--configuration", default="3d_fullres")
    tr.add_argument("--patch-size", type=at.positive_int, nargs=3, metavar=("Z", "Y", "X"), default=None,
                    help="train on this patch size instead of the planned one (32 32 32 makes CPU runs fast)")
    add_device(tr)
    tr.add_argument("--no-resume", action="store_true", help="start again instead of continuing (--c)")
    tr.add_argument("--skip-verify", action="store_true", help="skip nnU-Net's dataset integrity check")
    tr.set_defaults(func=run_train)

    pr = steps.add_parser("predict", help="segment CTs with a trained model")
    pr.add_argument("--model", required=True, help="trained-model folder (model_dir printed by train)")
    src = pr.add_mutually_exclusive_group(required=True)
    src.add_argument("--ct", type=at.input_path, help="one CT file; --out is then the label-map file")
    src.add_argument("--input", help="folder of <case>_0000.nii.gz files; --out is then a folder")
    pr.add_argument("--out", required=True)
    pr.add_argument("--region", type=at.input_path, help="mask on the CT grid: segment only its region + --margin-mm (paper)")
    pr.add_argument("--margin-mm", type=at.positive_float, default=TEST_MARGIN_MM)
    pr.add_argument("--fold", default=None, type=at.fold,
                    help="0-4 or `all` (default: the trained fold, 0 before `all`)")
    add_device(pr)
    pr.add_argument("--overwrite", action="store_true")
    pr.set_defaults(func=run_predict, outputs_apart={"out": ("ct", "input", "region", "model")})


def _fold(value: str | int | None) -> int | str | None:
    return value if value in (None, "all") else int(value)


def source_cases(dataset_dir: Path) -> int | None:
    """How many source (real) cases an exported dataset's training cases come from; None without the manifest."""
    import json

    from LNSynthLib.segmentation.nnunet.export import MANIFEST

    path = dataset_dir / MANIFEST
    if not path.is_file():
        return None
    return len({item["source_case"] for item in json.loads(path.read_text(encoding="utf-8"))["training"]})


def training_fold(dataset_dir: Path, fold: int | str | None) -> int | str:
    """`--fold`, or by default 0, or `all` for a dataset of one source case (one painted CT: no validation split)."""
    n_sources = source_cases(dataset_dir)
    if fold is None:
        return "all" if n_sources == 1 else 0
    if fold != "all" and n_sources == 1:
        from LNSynthLib.errors import InputDataError

        raise InputDataError(f"fold {fold} needs a train/validation split, and this dataset has one source case",
                             path=dataset_dir, fix="train fold `all` (the default for such a dataset), or export "
                                                   "more real cases")
    return _fold(fold)


def run_export(args: argparse.Namespace) -> int:
    from LNSynthLib.qc.verdicts import export_rejections
    from LNSynthLib.segmentation.nnunet.export import ExportSettings, export_dataset
    from LNSynthLib.segmentation.nnunet.project import NnUNetProject

    strategy = args.strategy or ("real+synt" if args.synthetic else "real")
    settings = ExportSettings(strategy=strategy, synt_per_case=args.synt_per_case, paste_into_ct=args.paste,
                              blend_mm=args.blend_mm, train_margin_mm=args.train_margin_mm,
                              test_margin_mm=args.test_margin_mm, qc=args.qc)
    name = args.name or {"real": "Real", "synt": "Synt", "real+synt": "RealSynt"}[strategy] + (
        "Pasted" if args.paste and strategy != "real" else "")
    project = NnUNetProject(Path(args.out))
    out = export_dataset(args.cases, project.raw_dataset(args.dataset_id, name),
                         synthetic_root=args.synthetic, test_root=args.test_cases, settings=settings,
                         overwrite=args.overwrite, rejected=export_rejections(args.cases, args.synthetic, args.qc))
    emit_result("dataset", out, project=str(project.root), dataset_id=args.dataset_id)
    print(f"nnU-Net dataset: {out}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from LNSynthLib.errors import InputDataError
    from LNSynthLib.segmentation.nnunet import runner as nr
    from LNSynthLib.segmentation.nnunet.project import NnUNetProject, TrainerSpec, dataset_id_of, model_of

    project = NnUNetProject(Path(args.project))
    dataset_id = args.dataset_id
    if dataset_id is None:
        found = project.datasets()
        if len(found) != 1:
            raise InputDataError(f"{len(found)} datasets in the project, cannot choose", path=project.raw,
                                 fix="pass --dataset-id (or export first with `lnsynth nnunet export`)")
        dataset_id = dataset_id_of(found[0].name)
    fold = training_fold(project.raw_dataset(dataset_id), args.fold)
    device = nnunet_device(args.device)
    trainer = TrainerSpec(args.epochs, args.iterations, args.val_iterations, real_share=args.real_share)
    nr.plan_and_preprocess(project, dataset_id, configuration=args.configuration, device=device,
                           verify=not args.skip_verify)
    configuration = nr.patch_configuration(project, dataset_id, args.patch_size, base=args.configuration)
    checkpoint = nr.train(project, dataset_id, trainer, fold=fold, configuration=configuration,
                          device=device, resume=not args.no_resume)
    model = model_of(checkpoint)
    emit_result("model_dir", model, checkpoint=str(checkpoint))
    print(f"model_dir: {model}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from LNSynthLib.segmentation.apply import check_input_images, segment_ct
    from LNSynthLib.segmentation.nnunet.runner import predict

    at.check_value(at.output_volume if args.ct else at.output_dir, "--out", args.out)
    device = nnunet_device(args.device)
    if args.ct:
        out = segment_ct(args.model, args.ct, args.out, fold=_fold(args.fold), device=device, region=args.region,
                         margin_mm=args.margin_mm, overwrite=args.overwrite)
    else:
        check_input_images(args.input)
        out = predict(args.model, args.input, args.out, fold=_fold(args.fold), device=device)
    emit_result("prediction", out)
    print(f"prediction: {out}")
    return 0
