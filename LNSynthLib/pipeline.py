"""The whole LNSynth job: cases → LN-DDPM → synthetic pairs → nnU-Net Real vs Real+Synt → report.

`run_pipeline` is what `lnsynth demo` (embedded phantom data, CPU-sized) and `lnsynth run`
(the user's data, `--config paper` on a GPU server) execute. Every stage checks what a
previous, interrupted run already finished and continues from there; the stages report
Progress lines so the job runner and the Slicer module can show them.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from LNSynthLib.anatomy.provenance import check_training_anatomy
from LNSynthLib.atomic import write_text_atomic
from LNSynthLib.cases import list_cases
from LNSynthLib.devices import nnunet_device
from LNSynthLib.diffusion.choices import method_label
from LNSynthLib.diffusion.config import plain_data
from LNSynthLib.diffusion.sample.inct_defaults import DEFAULT_MARGIN_MM
from LNSynthLib.errors import InputDataError
from LNSynthLib.jobs.progress import Progress
from LNSynthLib.jobs.results import emit_result
from LNSynthLib.prepare_raw import prepare_raw_folder
from LNSynthLib.segmentation.nnunet.datasets import (  # noqa: F401 - the pipeline's strategies, re-exported
    COPY_PASTE,
    DATASETS,
    IN_CT,
    MIXED,
    PIPELINE_STRATEGIES,
    PRETRAIN_FINETUNE,
    DatasetRow,
)
from LNSynthLib.segmentation.nnunet.trainers.plateau import DEFAULT_MIN_DELTA
from LNSynthLib.volumes.preprocess import TEST_MARGIN_MM, TRAIN_MARGIN_MM

DEFAULT_REAL_SHARE = 0.5   # where real and synthetic cases are mixed, half of the drawn cases are real


@dataclass(frozen=True)
class PipelineSettings:
    """Sizes of every stage; `demo()` fits a 2-core CPU in minutes, `paper()` is paper 000's setup.

    Sampling (sampler, steps, η, samples per case) is not declared here: it is the LN-DDPM
    config's `sample` section, changed through `ddpm_overrides` (`{"sample.steps": 10}`).
    """

    ddpm_config: str = "tiny"
    ddpm_overrides: dict[str, Any] = field(default_factory=dict)
    n_train_cases: int = 6               # phantom cases (demo only)
    n_test_cases: int = 2
    phantom_shape_zyx: tuple[int, int, int] = (64, 64, 64)
    seed: int = 0
    synt_per_case: int = 2               # synthetic cases per real case in Real+Synt (paper: 10)
    paste_variant: bool = False          # also train Real+Synt with patches pasted into their CT
    strategies: tuple[str, ...] = ("real", "real+synt")   # of PIPELINE_STRATEGIES; synt: Tables 3-4 of paper 000
    qc: bool = True                      # score the synthetic pairs (qc/) and leave the rejected ones out of export
    nnunet_epochs: int | None = 3        # None: nnU-Net's standard trainer
    nnunet_iterations: int = 10
    nnunet_val_iterations: int = 2
    nnunet_patience: int | None = None   # plateau stopping (segmentation/nnunet/trainers/plateau.py); nnunet_epochs is the budget
    nnunet_min_delta: float = DEFAULT_MIN_DELTA
    nnunet_patch_size: tuple[int, int, int] | None = None   # None: nnU-Net's planned patch
    nnunet_base_features: int | None = None   # features of the first stage (None: nnU-Net's 32); 16 is ~4x cheaper
    nnunet_fold: int | str = 0           # `all`: train on every training case (no held-out validation case)
    nnunet_step_size: float | None = None   # sliding-window step of the test predictions; None: nnU-Net's 0.5
    qc_real_model: str | None = None     # nnU-Net model trained on real data for QC's NodeRecall rule when this
                                         # run trains no Real model itself (the synthesis benchmark's QC groups)
    nnunet_shared_plan: bool = True      # every strategy trains with the plan of the real training cases
                                         # (network, patch, normalization: `segmentation/nnunet/plans.py`)
    nnunet_real_share: float | None = DEFAULT_REAL_SHARE   # share of drawn cases that are real where a dataset
                                         # mixes real and synthetic cases; None: nnU-Net's uniform draw
    nnunet_seed_offset: int = 0          # nnU-Net training is seeded with seed + this (a second draw of one run)
    inct_margin_mm: float = DEFAULT_MARGIN_MM   # real-inpaint: the generated neighbourhood around each new node
    train_margin_mm: float = TRAIN_MARGIN_MM
    test_margin_mm: float = TEST_MARGIN_MM
    device: str = "auto"
    lpips_weights: str | None = None
    # Anatomy of `lnsynth run --raw-cases` (prepared cases keep theirs): TotalSegmentator model and label filter
    totalseg_full_resolution: bool = False   # paper: the 1.5 mm models, not the fast 3 mm one
    label_filter: str = "none"               # anatomy.groups.LABEL_FILTERS; paper: abdominal
    allow_coarse_anatomy: bool = True        # paper: False, training cases with coarse anatomy are refused
    allow_other_anatomy: bool = True         # paper: False, TotalSegmentator anatomy made with another label
                                             # filter or model than above is refused (anatomy/provenance.py)

    @classmethod
    def demo(cls, **overrides: Any) -> PipelineSettings:
        # nnU-Net on 2 CPU cores: 32³ patches and 10 x 30 iterations train in about 4 min per strategy
        # and segment the phantom's test nodes (Real: DSC 0.92); nnU-Net's own 64³ plan took 3.7 min
        # for 3 x 10 iterations and found no node.
        return cls(**{"ddpm_overrides": {"train.iterations": 300, "train.checkpoint_every": 50,
                                         "sample.samples_per_case": 2},
                      "nnunet_epochs": 10, "nnunet_iterations": 30, "nnunet_patch_size": (32, 32, 32),
                      **overrides})

    @classmethod
    def paper(cls, **overrides: Any) -> PipelineSettings:
        return cls(**{"ddpm_config": "paper", "synt_per_case": 10, "nnunet_epochs": None, "paste_variant": True,
                      "totalseg_full_resolution": True, "label_filter": "abdominal",
                      "allow_coarse_anatomy": False, "allow_other_anatomy": False,
                      "qc": False,   # paper 000 filters no synthetic pair: 10x stays 10x
                      # nnU-Net as paper 000 used it: each dataset planned on its own, cases drawn uniformly
                      "nnunet_shared_plan": False, "nnunet_real_share": None,
                      **overrides})


@dataclass(frozen=True)
class Layout:
    """Where each stage writes inside the work folder."""

    root: Path

    train_cases = property(lambda self: self.root / "cases" / "train")
    test_cases = property(lambda self: self.root / "cases" / "test")
    ddpm_run = property(lambda self: self.root / "ln_ddpm")
    synthetic = property(lambda self: self.root / "synthetic")
    copy_paste = property(lambda self: self.root / "copy_paste")
    inct = property(lambda self: self.root / "synthetic_inct")
    nnunet = property(lambda self: self.root / "nnunet")
    predictions = property(lambda self: self.root / "predictions")
    report = property(lambda self: self.root / "report")


def export_strategy(pipeline_strategy: str) -> str:
    """The `nnunet export` strategy of a pipeline strategy: copy-paste and in-CT cases are exported like synthetic ones."""
    if pipeline_strategy == PRETRAIN_FINETUNE:
        return "real"   # its own dataset holds the real cases; the synthetic ones come in through pretraining
    return "real+synt" if pipeline_strategy in (COPY_PASTE, IN_CT) else pipeline_strategy


def selected_datasets(s: PipelineSettings) -> list[DatasetRow]:
    """The DATASETS rows this run trains: its `strategies`, the pasted row only with `paste_variant`."""
    unknown = [name for name in s.strategies if name not in PIPELINE_STRATEGIES]
    if unknown or not s.strategies:
        raise InputDataError(f"unknown or no training strategies {list(s.strategies)}",
                             fix=f"choose one or more of {', '.join(PIPELINE_STRATEGIES)}")
    return [row for row in DATASETS if row.strategy in s.strategies and (s.paste_variant or not row.paste)]


def make_phantom_cases(layout: Layout, s: PipelineSettings) -> None:
    from LNSynthLib.phantom import write_phantom_cases

    for root, n, seed in ((layout.train_cases, s.n_train_cases, s.seed),
                          (layout.test_cases, s.n_test_cases, s.seed + 10_000)):
        if root.is_dir() and len(list_cases(root)) >= n:
            continue
        write_phantom_cases(root, n, seed=seed, shape_zyx=s.phantom_shape_zyx, overwrite=True)


def ddpm_config(s: PipelineSettings):  # noqa: ANN201 - LNDDPMConfig (diffusion is imported lazily)
    """The LN-DDPM config of this run: `s.ddpm_config` with `s.ddpm_overrides` (checked on load)."""
    from LNSynthLib.diffusion.config import load_config

    return load_config(s.ddpm_config, dict(s.ddpm_overrides))


def train_ln_ddpm(layout: Layout, s: PipelineSettings) -> Path:
    from LNSynthLib.diffusion.train.training import train

    done = layout.ddpm_run / "done.json"
    if done.exists():
        return Path(json.loads(done.read_text(encoding="utf-8"))["checkpoint"])
    checkpoint = train(ddpm_config(s), layout.train_cases, layout.ddpm_run, resume=True, device=s.device)
    write_text_atomic(done, json.dumps({"checkpoint": str(checkpoint)}), overwrite=True)
    return Path(checkpoint)


def sample_synthetic(layout: Layout, s: PipelineSettings, checkpoint: Path) -> None:
    from LNSynthLib.diffusion.sample.sampling import sample_cases

    sample = ddpm_config(s).sample   # this run's config decides, also when resuming an older checkpoint
    expected = len(list_cases(layout.train_cases)) * sample.samples_per_case
    if layout.synthetic.is_dir() and len(list_cases(layout.synthetic)) >= expected:
        return
    sample_cases(checkpoint, layout.train_cases, layout.synthetic, samples_per_case=sample.samples_per_case,
                 sampler=sample.sampler, steps=sample.steps, eta=sample.eta, seed=s.seed, transforms=True,
                 device=s.device, window=sample.window)


def inct_cases(layout: Layout, s: PipelineSettings, checkpoint: Path) -> Path:
    """`synt_per_case` in-CT cases per real training case: LN-DDPM nodes synthesized into the real CT."""
    from LNSynthLib.diffusion.sample.inct_cases import write_inct_cases

    sample = ddpm_config(s).sample
    write_inct_cases(checkpoint, layout.train_cases, layout.inct, per_case=s.synt_per_case, seed=s.seed,
                     margin_mm=s.inct_margin_mm, sampler=sample.sampler, steps=sample.steps, eta=sample.eta,
                     device=s.device)
    return layout.inct


def copy_paste_cases(layout: Layout, s: PipelineSettings) -> Path:
    """`synt_per_case` copy-paste cases per real training case (resumes: finished cases are kept)."""
    from LNSynthLib.augment.copy_paste import write_copy_paste_cases

    write_copy_paste_cases(layout.train_cases, layout.copy_paste, per_case=s.synt_per_case, seed=s.seed)
    return layout.copy_paste


def quality_control(layout: Layout, real_model: Path | None, device: str):  # noqa: ANN201
    """Score the synthetic pairs into `synthetic/qc.json` (QCReport); NodeRecall rule with the Real model if trained."""
    from LNSynthLib.qc import score_synthetic

    return score_synthetic(layout.train_cases, layout.synthetic, real_model=real_model, device=device,
                           work_dir=layout.report / "work")   # the evaluation reuses these predictions


def export_strategy_dataset(layout: Layout, s: PipelineSettings, row: DatasetRow) -> Path:
    """The nnU-Net raw dataset of one DATASETS row (real and/or synthetic training cases, real test cases)."""
    from LNSynthLib.qc.verdicts import export_rejections
    from LNSynthLib.segmentation.nnunet.export import ExportSettings, export_dataset
    from LNSynthLib.segmentation.nnunet.project import NnUNetProject

    dataset_id, name, strategy, paste = row.dataset_id, row.name, row.strategy, row.paste
    settings = ExportSettings(strategy=export_strategy(strategy), synt_per_case=s.synt_per_case, paste_into_ct=paste,
                              train_margin_mm=s.train_margin_mm, test_margin_mm=s.test_margin_mm, qc=s.qc)
    synthetic = {"real": None, COPY_PASTE: layout.copy_paste, IN_CT: layout.inct}.get(strategy, layout.synthetic)
    if strategy == COPY_PASTE:
        copy_paste_cases(layout, s)
    dataset_dir = NnUNetProject(layout.nnunet).raw_dataset(dataset_id, name)
    export_dataset(layout.train_cases, dataset_dir, synthetic_root=synthetic, test_root=layout.test_cases,
                   settings=settings, rejected=export_rejections(layout.train_cases, synthetic, s.qc))
    return dataset_dir


def train_and_predict(layout: Layout, s: PipelineSettings, device: str) -> list:
    """Export, plan, train and predict each strategy; returns the report's PredictionSets."""
    from LNSynthLib.report.report import PredictionSet
    from LNSynthLib.segmentation.nnunet import runner as nr
    from LNSynthLib.segmentation.nnunet.project import NnUNetProject, TrainerSpec, model_of

    project = NnUNetProject(layout.nnunet)
    sets = []
    real_model, scored = (Path(s.qc_real_model) if s.qc_real_model else None), False
    for row in selected_datasets(s):
        dataset_id, name, strategy, method = row.dataset_id, row.name, row.strategy_label, row.method
        if s.qc and not scored and row.strategy in ("real+synt", "synt", PRETRAIN_FINETUNE):   # the first patch-mode one
            quality_control(layout, real_model, device)
            scored = True
        dataset_dir = export_strategy_dataset(layout, s, row)
        plans_name = plan_dataset(layout, s, project, row, device)
        configuration = nr.patch_configuration(project, dataset_id, s.nnunet_patch_size,
                                               base_features=s.nnunet_base_features, plans_name=plans_name)
        share = s.nnunet_real_share if row.strategy in MIXED else None
        trainer = TrainerSpec(s.nnunet_epochs, s.nnunet_iterations, s.nnunet_val_iterations, s.nnunet_patience,
                                 s.nnunet_min_delta, share)
        pretrained = None
        if row.strategy == PRETRAIN_FINETUNE:
            pretrained, trainer = pretrain_on_synthetic(layout, s, project, device, configuration)
        checkpoint = nr.train(project, dataset_id, trainer, fold=s.nnunet_fold, configuration=configuration,
                              device=device, seed=s.seed + s.nnunet_seed_offset, plans_name=plans_name,
                              pretrained=pretrained)
        pred_dir = layout.predictions / name
        nr.predict(model_of(checkpoint), dataset_dir / "imagesTs", pred_dir, fold=s.nnunet_fold, device=device,
                   step_size=s.nnunet_step_size)
        sets.append(PredictionSet(strategy, method, pred_dir, checkpoint.parent))
        if row.strategy == "real":
            real_model = model_of(checkpoint)
    return sets


def plan_dataset(layout: Layout, s: PipelineSettings, project: Any, row: DatasetRow, device: str) -> str:
    """Plan and preprocess one dataset; returns the plans name to train with.

    With `nnunet_shared_plan` every dataset but Real is preprocessed with the plan of the Real
    dataset (exported and planned here when this run does not train Real), so every strategy
    trains the same network on the same normalization (`segmentation/nnunet/plans.py`).
    """
    from LNSynthLib.segmentation.nnunet import runner as nr
    from LNSynthLib.segmentation.nnunet.project import DEFAULT_PLANS

    if not s.nnunet_shared_plan or row.strategy == "real":
        nr.plan_and_preprocess(project, row.dataset_id, device=device)
        return DEFAULT_PLANS
    real_row = DATASETS[0]
    export_strategy_dataset(layout, s, real_row)
    nr.plan_and_preprocess(project, real_row.dataset_id, device=device)
    return nr.transfer_plans(project, real_row.dataset_id, row.dataset_id, device=device)


def half_budget(s: PipelineSettings) -> tuple[Any, Any]:
    """The pretraining and the fine-tuning trainer of `synt>real`: half of the one-training budget each."""
    from LNSynthLib.segmentation.nnunet.project import STANDARD_EPOCHS, TrainerSpec

    if s.nnunet_epochs is None:   # nnU-Net's standard 1000 x (250 + 50), split in two
        epochs, iterations, val = STANDARD_EPOCHS, 250, 50
    else:
        epochs, iterations, val = s.nnunet_epochs, s.nnunet_iterations, s.nnunet_val_iterations
    first = max(1, epochs // 2)
    return (TrainerSpec(first, iterations, val, s.nnunet_patience, s.nnunet_min_delta),
            TrainerSpec(max(1, epochs - first), iterations, val, s.nnunet_patience, s.nnunet_min_delta))


def pretrain_on_synthetic(layout: Layout, s: PipelineSettings, project: Any, device: str,
                          configuration: str) -> tuple[Path, Any]:
    """Train the Synt dataset for half the budget (the real cases' plan, so the weights fit); returns its final
    checkpoint and the fine-tuning trainer (the other half)."""
    from LNSynthLib.segmentation.nnunet import runner as nr

    if not s.nnunet_shared_plan:
        raise InputDataError("pretraining on synthetic cases and fine-tuning on real ones needs one network for both",
                             fix="keep the shared plan (nnunet_shared_plan) for the synt>real strategy")
    synt_row = next(row for row in DATASETS if row.strategy == "synt")
    export_strategy_dataset(layout, s, synt_row)
    plans_name = plan_dataset(layout, s, project, synt_row, device)
    config = nr.patch_configuration(project, synt_row.dataset_id, s.nnunet_patch_size, base_features=s.nnunet_base_features,
                                    plans_name=plans_name)
    if config != configuration:
        raise InputDataError(f"the Synt dataset's configuration {config} differs from {configuration}",
                             fix="train both with the same patch size and width")
    pre, fine = half_budget(s)
    checkpoint = nr.train(project, synt_row.dataset_id, pre, fold=s.nnunet_fold, configuration=config, device=device,
                          seed=s.seed + s.nnunet_seed_offset, plans_name=plans_name)
    return checkpoint, fine


def run_pipeline(work_dir: str | Path, settings: PipelineSettings | None = None, *,
                 cases: str | Path | None = None, test_cases: str | Path | None = None) -> Path:
    """Run (or continue) the whole job in `work_dir`; returns the path of report.md.

    Without `cases` the embedded phantom makes the data (the demo); with `cases`/`test_cases`
    (prepared-case folders, see `lnsynth prepare`) the user's data is used instead.
    """
    s = settings or PipelineSettings.demo()
    selected_datasets(s)   # an unknown strategy stops before anything is written
    layout = Layout(Path(work_dir).resolve())
    if cases is not None:
        if test_cases is None:
            raise InputDataError("user data needs held-out test cases too", path=cases,
                                 fix="pass --test-cases with prepared cases that are not in --cases")
        from LNSynthLib.segmentation.leakage import check_prepared_disjoint

        check_prepared_disjoint(cases, test_cases)  # before anything is written
        check_training_anatomy(cases, s)   # the training cases condition LN-DDPM; test cases only need CT + LN
    layout.root.mkdir(parents=True, exist_ok=True)
    check_settings_record(layout.root, s)   # a rerun continues the same job or refuses; it never mixes two
    if cases is not None:
        layout = _with_user_cases(layout, Path(cases), Path(test_cases))
    device = nnunet_device(s.device)
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    stages = ["cases", "ln_ddpm", "sampling", "nnunet", "evaluate"]
    with Progress("pipeline", len(stages)) as progress:
        def stage(name: str) -> None:
            timings[name] = round(time.monotonic() - t0 - sum(timings.values()), 1)
            progress.update(message=f"{name} done")

        if cases is None:
            make_phantom_cases(layout, s)
        stage("cases")
        checkpoint = train_ln_ddpm(layout, s)
        stage("ln_ddpm")
        sample_synthetic(layout, s, checkpoint)
        if IN_CT in s.strategies:
            inct_cases(layout, s, checkpoint)
        stage("sampling")
        sets = train_and_predict(layout, s, device)
        stage("nnunet")
        report = _evaluate(layout, s, sets, device)
        stage("evaluate")
    _record_timings(layout.root / "timings.json", timings, plain_data(asdict(s)), device)
    emit_result("report", report, work_dir=str(layout.root))
    return report


def _evaluate(layout: Layout, s: PipelineSettings, sets: list, device: str) -> Path:
    from LNSynthLib.report.generation_eval import evaluate_generation
    from LNSynthLib.report.report import EvaluationInputs, write_report
    from LNSynthLib.segmentation.nnunet.project import STANDARD_EPOCHS, NnUNetProject, model_of
    from LNSynthLib.segmentation.nnunet.runner import patch_label

    method = method_label(ddpm_config(s).network.variant, s.ddpm_overrides)   # rows name the variant trained
    sets = [replace(p, method=p.method.replace("LN-DDPM", method, 1)) for p in sets]
    real_model = next((model_of(p.training_dir) for p in sets if p.strategy == "Real"), None)
    generation = evaluate_generation(layout.train_cases, layout.synthetic, work_dir=layout.report / "work",
                                     lpips_weights=s.lpips_weights, real_model=real_model, device=device,
                                     method=method)
    first = selected_datasets(s)[0]   # every dataset holds the same test cases
    dataset_dir = NnUNetProject(layout.nnunet).raw_dataset(first.dataset_id, first.name)
    trainer = (f"standard ({STANDARD_EPOCHS} epochs)" if s.nnunet_epochs is None else
               f"{s.nnunet_epochs} epochs x {s.nnunet_iterations} iterations (a short CPU run on small phantom "
               "data: it shows the pipeline working end to end, not paper-level quality)")
    if s.nnunet_epochs is not None and s.nnunet_patience is not None:
        trainer += (f"; stopped earlier when the smoothed validation loss had not improved by more than "
                    f"{s.nnunet_min_delta} for {s.nnunet_patience} epochs (plateau.json in each training folder)")
    patch = f"patch {patch_label(s.nnunet_patch_size)} voxels" if s.nnunet_patch_size else "nnU-Net's planned patch"
    sample = ddpm_config(s).sample
    notes = [f"nnU-Net trainer: {trainer}; {patch}",
             f"LN-DDPM config {s.ddpm_config} {s.ddpm_overrides}; {sample.samples_per_case} samples per case "
             f"({sample.sampler}, {sample.steps} steps); Real+Synt and Synt use {s.synt_per_case} per real case.",
             f"Strategies trained: {', '.join(row.strategy_label + ' / ' + row.method for row in selected_datasets(s))}.",
             _qc_note(layout, s)]
    inputs = EvaluationInputs(layout.report, dataset_dir / "labelsTs", sets, images_dir=dataset_dir / "imagesTs",
                              real_root=layout.train_cases, test_root=layout.test_cases,
                              synthetic_root=layout.synthetic, ddpm_run=layout.ddpm_run, generation=generation, notes=notes)
    report, _ = write_report(inputs)
    return report


def _qc_note(layout: Layout, s: PipelineSettings) -> str:
    """What quality control removed (qc.json), for the report's notes."""
    from LNSynthLib.qc.verdicts import read_qc

    qc = read_qc(layout.synthetic) if s.qc and layout.synthetic.is_dir() else None
    if qc is None:
        return "Quality control of the synthetic pairs: off." if not s.qc else \
            "Quality control of the synthetic pairs: not run (no LN-DDPM strategy trained)."
    rules = ", ".join(f"{rule} {n}" for rule, n in qc["removed_by_rule"].items())
    return (f"Quality control (synthetic/qc.json): {qc['n_rejected']} of {qc['n_samples']} synthetic pairs "
            f"rejected and left out of the export; samples failing each rule: {rules}.")


def prepare_raw_cases(raw_root: str | Path, out_root: str | Path, *, device: str = "auto",
                      anatomy_source: str = "auto", settings: PipelineSettings | None = None) -> Path:
    """Prepare `<raw_root>/<case>/{ct, ln[, anatomy|totalseg]}.<nii.gz|nrrd|...>` into prepared cases.

    Without an anatomy file, `prepare_case` makes one (TotalSegmentator when its weights are
    there, else the labelled coarse fallback), with `settings`' TotalSegmentator model and label
    filter. Cases already prepared are kept (resume); see `prepare_raw.prepare_raw_folder`.
    """
    s = settings or PipelineSettings()
    prepare_raw_folder(raw_root, out_root, anatomy_source=anatomy_source, device=device,
                       fast=not s.totalseg_full_resolution, label_filter=s.label_filter)
    return Path(out_root)


def _with_user_cases(layout: Layout, cases: Path, test_cases: Path) -> Layout:
    """Use the user's prepared cases in place of the phantom (through symlinks, nothing is copied)."""
    for src, dst in ((cases, layout.train_cases), (test_cases, layout.test_cases)):
        if not list_cases(src):
            raise InputDataError("no prepared cases in this folder", path=src,
                                 fix="prepare them first with `lnsynth prepare` (one folder per case)")
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.is_symlink() and dst.resolve() != src.resolve():
            raise InputDataError("this work folder was started with other cases", path=dst,
                                 fix="use a new --out folder for other data")
        if not dst.exists():
            dst.symlink_to(src.resolve(), target_is_directory=True)
    return layout


SETTINGS_RECORD = "pipeline_settings.json"
RUN_ONLY_SETTINGS = ("device", "lpips_weights")   # where and how to compute, not what: a rerun may change them


def check_settings_record(root: Path, s: PipelineSettings) -> None:
    """Record this job's settings on its first run; refuse a rerun of the folder with other settings.

    Every stage resumes from what is in the folder, so a rerun with new settings would keep the old stages'
    outputs and write a report naming settings they were not made with.
    """
    wanted = {k: v for k, v in plain_data(asdict(s)).items() if k not in RUN_ONLY_SETTINGS}
    path = root / SETTINGS_RECORD
    if not path.exists():
        write_text_atomic(path, json.dumps(wanted, indent=2, sort_keys=True), overwrite=True)
        return
    done = json.loads(path.read_text(encoding="utf-8"))
    changed = sorted(k for k in set(done) | set(wanted) if done.get(k) != wanted.get(k))
    if changed:
        raise InputDataError(f"this work folder holds a job run with other settings ({', '.join(changed)})",
                             path=root, fix="rerun with the same settings to continue it, or give a new --out folder")


def _record_timings(path: Path, timings: dict[str, float], settings: dict[str, Any], device: str) -> None:
    """Add this run's stage times to earlier runs' (a resumed run must not hide the work done before)."""
    runs = json.loads(path.read_text(encoding="utf-8")).get("runs", []) if path.exists() else []
    runs.append(timings)
    totals = {name: round(sum(run.get(name, 0.0) for run in runs), 1) for name in timings}
    write_text_atomic(path, json.dumps({"stages_s": totals, "runs": runs, "settings": settings, "device": device},
                                       indent=2), overwrite=True)


__all__ = ["DATASETS", "PIPELINE_STRATEGIES", "Layout", "PipelineSettings", "run_pipeline", "selected_datasets"]
