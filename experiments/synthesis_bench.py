"""`python -m experiments synthesis`: does LN-DDPM synthesis help nnU-Net with 2 or 4 annotated cases?

For each data regime (real training cases) and seed: phantom training cases and ≥ 10 held-out
phantom test cases (other phantom seeds, used for nothing but the final scores); one LN-DDPM
trained until its samples pass the condition-fidelity check (`diffusion/sample/fidelity_check`)
and sampled once, shared by every strategy; then every strategy of `synthesis_grid.STRATEGIES`
through `run_pipeline` with the same nnU-Net rule (plateau stopping on the validation loss of
the training cases, the same max-epoch budget). Each (regime, seed, strategy) leaves a
`done_<strategy>.json` marker, so a rerun continues where it stopped. Results: mean ± sd over
seeds and the paired bootstrap difference to Real over test cases and seeds
(`report/confidence.py`), in `synthesis.{json,md}` (`--quick`: `synthesis_quick.{json,md}`).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from experiments import synthesis_grid as grid
from experiments.synthesis_generator import train_to_gate
from LNSynthLib.atomic import write_text_atomic
from LNSynthLib.bench.results import write_results
from LNSynthLib.cli import arg_types as at
from LNSynthLib.cli.options import add_device

DESCRIPTION = "Real vs copy-paste vs LN-DDPM synthesis with 2/4 real cases over seeds, with 95 % CIs (resumable)"
# Real, copy-paste and LN-DDPM 10x on 5 seeds, the variants on the first 2 (grid.PRIMARY); QC at 10x only
# (`--strategies ... ddpm5_qc` adds the 5x one). nnU-Net trains on every real case (fold `all`:
# with 2 cases a held-out validation case would halve the training data) with half its planned width (16 base
# features: 2.3x faster per iteration on 2 cores), at most 80 epochs of 10 + 2 iterations, stopped earlier when
# its smoothed validation loss (on its training cases) has not improved for 15 epochs. Why: at 25 or 40 epochs
# of the full-width network Real was still learning (the loss stays flat for 20-30 epochs before the nodes are
# found, so a short patience would stop there); a 100-epoch pilot on the training cases of regime 2 / seed 0
# reached training pseudo-Dice 0.86 at epoch 50 and flattened at 0.85-0.91 from there. Test images are tiled
# (step 1.0: 8 windows, not 27). LN-DDPM samples with DPM-Solver++ in 5 steps (`python -m experiments samplers`: the
# same fidelity as DDPM-300).
FULL = {"regimes": (2, 4), "seeds": (0, 1, 2, 3, 4), "test_cases": 10,
        "strategies": (*grid.PRIMARY, *grid.FACTORS),
        "ddpm_check_every": 300, "ddpm_max_iterations": 900, "fidelity_patches": 4, "sampler": "dpmpp",
        "sampler_steps": 5, "nnunet_fold": "all", "nnunet_base_features": 16, "nnunet_max_epochs": 80,
        "nnunet_iterations": 10, "nnunet_val_iterations": 2, "patience": 15, "min_delta": 0.005,
        "patch": (32, 32, 32), "step_size": 1.0, "secondary_seeds": 2}
QUICK = {**FULL, "regimes": (2,), "seeds": (0,), "test_cases": 3, "strategies": ("real", "copypaste", "ddpm5"),
         "ddpm_check_every": 150, "ddpm_max_iterations": 300, "nnunet_max_epochs": 3, "nnunet_iterations": 4,
         "nnunet_val_iterations": 2, "patience": 2}
FULL_RUN_LIMIT_S = 3 * 3600
SEED_STRIDE = 1000       # phantom seeds of bench seed k start at k * SEED_STRIDE (cases never shared)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="1 regime, 1 seed, 3 strategies, tiny budgets: a smoke test of minutes")
    parser.add_argument("--work", default="bench_synthesis", help="folder for cases, models and runs (resumable)")
    parser.add_argument("--regimes", type=at.positive_int, nargs="+", default=None,
                        help="real training cases per regime (at least 2: nnU-Net validates on one of them)")
    parser.add_argument("--seeds", type=at.non_negative_int, nargs="+", default=None)
    parser.add_argument("--strategies", nargs="+", choices=list(grid.BY_KEY), default=None)
    parser.add_argument("--test-cases", type=at.positive_int, default=None, help="held-out phantom test cases per seed")
    parser.add_argument("--report-only", action="store_true",
                        help="write the results from the finished runs in --work without running anything")
    add_device(parser)


def budget(args: argparse.Namespace) -> dict[str, Any]:
    b = dict(QUICK if args.quick else FULL)
    for key in ("regimes", "seeds", "strategies", "test_cases"):
        if getattr(args, key, None):
            b[key] = tuple(getattr(args, key)) if key != "test_cases" else int(args.test_cases)
    if getattr(args, "seeds", None) or getattr(args, "strategies", None):
        b["secondary_seeds"] = None   # what the user names runs on every seed named
    if min(b["regimes"]) < 2:
        from LNSynthLib.errors import UsageError

        raise UsageError(f"argument --regimes: {min(b['regimes'])} real case(s) cannot be split into nnU-Net "
                         "training and validation", fix="give at least 2 real training cases per regime")
    return b


def base_settings(b: dict[str, Any], regime: int, seed: int, device: str, multiple: int):  # noqa: ANN201
    from LNSynthLib.pipeline import PipelineSettings

    return PipelineSettings.demo(
        n_train_cases=regime, n_test_cases=b["test_cases"], seed=seed * SEED_STRIDE, device=device,
        ddpm_overrides={"train.iterations": b["ddpm_max_iterations"], "train.checkpoint_every": b["ddpm_check_every"],
                        "train.seed": seed, "sample.samples_per_case": multiple, "sample.sampler": b["sampler"],
                        "sample.steps": b["sampler_steps"]},
        nnunet_epochs=b["nnunet_max_epochs"], nnunet_iterations=b["nnunet_iterations"],
        nnunet_val_iterations=b["nnunet_val_iterations"], nnunet_patience=b["patience"],
        nnunet_min_delta=b["min_delta"], nnunet_patch_size=tuple(b["patch"]), nnunet_fold=b["nnunet_fold"],
        nnunet_base_features=b["nnunet_base_features"],
        nnunet_step_size=b["step_size"])


def shared_stage(work: Path, regime: int, seed: int, b: dict[str, Any], device: str, multiple: int) -> dict:
    """Cases, the LN-DDPM trained to fidelity and its synthetic cases for one (regime, seed)."""
    from LNSynthLib.pipeline import Layout, make_phantom_cases, sample_synthetic

    layout = Layout(work / f"regime{regime}" / f"seed{seed}" / "shared")
    settings = base_settings(b, regime, seed, device, multiple)
    make_phantom_cases(layout, settings)
    ddpm = train_to_gate(layout, settings, b)
    if "sampling_s" not in ddpm:
        t0 = time.monotonic()
        sample_synthetic(layout, settings, Path(ddpm["checkpoint"]))
        ddpm.update(sampling_s=round(time.monotonic() - t0, 1), samples=regime * multiple)
        write_text_atomic(layout.ddpm_run / "fidelity.json", json.dumps(ddpm, indent=2, default=float),
                          overwrite=True)
    return ddpm


def first_round_synthetic(work: Path, regime: int, seed: int, b: dict[str, Any], device: str, multiple: int) -> None:
    """The round-1 (150-iteration) generator's synthetic set, for the gate-vs-150 factor."""
    from LNSynthLib.pipeline import Layout, sample_synthetic

    layout = Layout(work / f"regime{regime}" / f"seed{seed}" / "shared")
    record = json.loads((layout.ddpm_run / "fidelity.json").read_text(encoding="utf-8"))
    first = record.get("checkpoint_first_round")
    if first:
        settings = base_settings(b, regime, seed, device, multiple)
        sample_synthetic(Layout(layout.root / "first_round"), settings, Path(first))
        target = layout.root / "synthetic_it150"
        if not target.exists():
            target.symlink_to(layout.root / "first_round" / "synthetic", target_is_directory=True)


def _link_shared(root: Path, shared: Path, synthetic: str = "synthetic") -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, source in (("cases", "cases"), ("ln_ddpm", "ln_ddpm"), ("synthetic", synthetic)):
        if not (root / name).is_symlink() and (shared / source).exists():
            (root / name).symlink_to(shared / source, target_is_directory=True)


def real_model_of(seed_dir: Path) -> Path | None:
    """The Real group's trained nnU-Net model of this (regime, seed), for the QC groups' NodeRecall rule."""
    from LNSynthLib.pipeline import Layout
    from LNSynthLib.segmentation.nnunet.project import NnUNetProject, model_of

    project = NnUNetProject(Layout(seed_dir / grid.REAL_KEY).nnunet)
    hits = project.fold_dirs("Dataset*_Real", checkpoint="checkpoint_final.pth")
    return model_of(hits[0]) if hits else None


def measure_prediction(fold: Path, images: Path, device: str, step_size: float | None) -> float:
    """Seconds per test case of one more prediction of the test images (the estimate's prediction cost)."""
    import tempfile

    from LNSynthLib.devices import nnunet_device
    from LNSynthLib.segmentation.nnunet.project import NnUNetProject, model_of
    from LNSynthLib.segmentation.nnunet.runner import predict

    model = model_of(fold)
    with tempfile.TemporaryDirectory(dir=NnUNetProject.of_model(model).root, prefix=".predict_cost.") as tmp:
        t0 = time.monotonic()
        predict(model, images, Path(tmp) / "out", device=nnunet_device(device), log_dir=tmp,
                step_size=step_size)
        return (time.monotonic() - t0) / max(1, len(list(images.glob("*_0000.nii.gz"))))


def run_group(work: Path, regime: int, seed: int, members: list[grid.Strategy], b: dict[str, Any], device: str,
              multiple: int, measure_predict: bool = False) -> None:
    """One pipeline call for a group of strategies; a `done_<key>.json` marker per strategy."""
    from LNSynthLib.pipeline import Layout, run_pipeline
    from LNSynthLib.segmentation.nnunet.progress import parse_training_logs
    from LNSynthLib.segmentation.nnunet.project import NnUNetProject, dataset_of, model_of
    from LNSynthLib.segmentation.nnunet.runner import TRAINING_RECORD
    from LNSynthLib.segmentation.nnunet.trainers.plateau import read_record

    seed_dir = work / f"regime{regime}" / f"seed{seed}"
    root = seed_dir / members[0].group
    _link_shared(root, seed_dir / "shared", members[0].synthetic)
    changes = grid.group_settings(members)
    real_model = real_model_of(seed_dir) if changes["qc"] else None
    if real_model is not None:
        changes["qc_real_model"] = str(real_model)
    settings = grid.replace_settings(base_settings(b, regime, seed, device, multiple), changes)
    load_before = os.getloadavg()[0]
    t0 = time.monotonic()
    report = run_pipeline(root, settings)
    wall = time.monotonic() - t0
    metrics = json.loads((report.parent / "metrics.json").read_text(encoding="utf-8"))
    stages = json.loads((root / "timings.json").read_text(encoding="utf-8"))["stages_s"]
    project = NnUNetProject(Layout(root).nnunet)
    folds = {dataset_of(model_of(fold)): fold for fold in project.fold_dirs(fold=b["nnunet_fold"])}
    for strategy in members:
        row = grid.pick_row(strategy, metrics["segmentation"])
        if row is None:
            raise RuntimeError(f"no report row for {strategy.label} in {report}")
        dataset, fold = next(((name, f) for name, f in folds.items() if ("Pasted" in name) == strategy.paste),
                             (None, None))
        epochs = parse_training_logs(fold) if fold else []
        training = json.loads((fold / TRAINING_RECORD).read_text(encoding="utf-8")) if fold else {}
        marker = {"nnunet_train_s": round(sum(e.epoch_time_s or 0.0 for e in epochs), 1),
                  "plan_hash": training.get("plan_hash"), "plan": training.get("plan_summary"),
                  "nnunet_seed": training.get("seed"), "trainer": training.get("trainer"),
                  "false_positives": fp_split(root, strategy),
                  "nnunet_epochs_run": len(epochs),"strategy": strategy.key, "regime": regime, "seed": seed, "summary": row,
                  "per_case": metrics["segmentation_per_case"][f"{row['strategy']} | {row['method']}"],
                  "plateau": read_record(fold) if fold else None, "group_wall_s": round(wall, 1),
                  "group_size": len(members), "stages_s": stages, "load_average": [load_before, os.getloadavg()[0]],
                  "qc_real_model": None if real_model is None else str(real_model), "finished_at": time.time()}
        if measure_predict and fold is not None:
            images = project.raw / dataset / "imagesTs"
            marker["predict_s_per_case"] = round(measure_prediction(fold, images, device, b["step_size"]), 2)
            measure_predict = False
        write_text_atomic(seed_dir / f"done_{strategy.key}.json", json.dumps(marker, indent=2, default=float),
                          overwrite=True)


def fp_split(root: Path, strategy: grid.Strategy) -> dict[str, Any] | None:
    """False positives of one strategy's test predictions by what they fell on (phantom test cases only)."""
    from LNSynthLib.cases import list_cases, load_case
    from LNSynthLib.phantom.false_positives import add_splits, false_positive_split, phantom_tissue
    from LNSynthLib.segmentation.nnunet.datasets import DATASETS
    from LNSynthLib.volumes.io import read_volume

    row = next(r for r in DATASETS if r.strategy == strategy.pipeline_strategy and r.paste == strategy.paste)
    total = None
    for case in list_cases(root / "cases" / "test"):
        pred_path = root / "predictions" / row.name / f"{case.name}.nii.gz"
        tissue = phantom_tissue(case)
        if tissue is None or not pred_path.exists():
            return None
        pred = read_volume(pred_path).array
        if pred.shape != tissue.shape:
            return None
        total = add_splits(total, false_positive_split(pred, load_case(case).ln.array, tissue))
    return total


def run(args: argparse.Namespace) -> tuple[Path, Path]:
    from LNSynthLib.jobs.progress import Progress
    from LNSynthLib.pipeline import PIPELINE_STRATEGIES, PipelineSettings

    b = budget(args)
    work = Path(args.work).resolve()
    setting_names = [f.name for f in fields(PipelineSettings)]
    chosen = [grid.BY_KEY[k] for k in b["strategies"]]
    skipped = {s.key: why for s in chosen if (why := grid.unsupported(s, PIPELINE_STRATEGIES, setting_names))}
    for key, why in skipped.items():
        print(f"bench synthesis: skipping {grid.BY_KEY[key].label}: {why}", flush=True)
    runnable = [s for s in chosen if s.key not in skipped]
    groups: dict[str, list[grid.Strategy]] = {}
    for s in runnable:
        groups.setdefault(s.group, []).append(s)
    # The pipeline trains and samples LN-DDPM in every run, so even Real alone gets (one shared) model.
    multiple = max((s.synt_per_case for s in runnable if s.pipeline_strategy != "real"), default=1)
    jobs = [(r, seed, g) for r in b["regimes"] for k, seed in enumerate(b["seeds"]) for g in groups
            if grid.runs_on_seed(groups[g], k, b.get("secondary_seeds"))]
    started, load_start, ran, ddpm = time.monotonic(), os.getloadavg()[0], [], {}
    if args.report_only:
        if not collect(work, b):   # a wrong --work must not replace the results with empty tables
            from LNSynthLib.errors import InputDataError

            raise InputDataError("no finished benchmark run for these regimes, seeds and strategies", path=work,
                                 fix="give the --work folder of a benchmark run (and its --regimes/--seeds)")
        ddpm = finished_ddpm(work, b)
        return _write(args, b, work, skipped, ddpm, time.monotonic() - started, load_start)
    with Progress("bench_synthesis", len(jobs)) as progress:
        for k, (regime, seed, group) in enumerate(jobs):
            seed_dir = work / f"regime{regime}" / f"seed{seed}"
            if (regime, seed) not in ddpm:
                ddpm[(regime, seed)] = shared_stage(work, regime, seed, b, args.device, multiple)
            members = groups[group]
            if members[0].synthetic == "synthetic_it150":
                first_round_synthetic(work, regime, seed, b, args.device, multiple)
            if not all((seed_dir / f"done_{s.key}.json").exists() for s in members):
                t0 = time.monotonic()
                run_group(work, regime, seed, members, b, args.device, multiple, measure_predict=not ran)
                ran.append(time.monotonic() - t0)
            left = len(jobs) - k - 1
            eta = left * sum(ran) / len(ran) if ran else None
            print(f"bench synthesis [{k + 1}/{len(jobs)}] regime {regime}, seed {seed}, {group}: done; "
                  f"elapsed {(time.monotonic() - started) / 60:.1f} min, ETA "
                  f"{'n/a' if eta is None else f'{eta / 60:.1f} min'}, load {os.getloadavg()[0]:.1f}", flush=True)
            progress.update(message=f"regime {regime} seed {seed} {group}")
    return _write(args, b, work, skipped, ddpm, time.monotonic() - started, load_start)


def _pairs(work: Path, b: dict[str, Any]):  # noqa: ANN202 - an iterator of ((regime, seed), seed folder)
    for regime in b["regimes"]:
        for seed in b["seeds"]:
            yield (regime, seed), work / f"regime{regime}" / f"seed{seed}"


def finished_ddpm(work: Path, b: dict[str, Any]) -> dict[tuple[int, int], dict]:
    """The LN-DDPM records (fidelity.json) of the (regime, seed) pairs that have one."""
    paths = {pair: folder / "shared" / "ln_ddpm" / "fidelity.json" for pair, folder in _pairs(work, b)}
    return {pair: json.loads(path.read_text(encoding="utf-8")) for pair, path in paths.items() if path.exists()}


def finished_qc(work: Path, b: dict[str, Any]) -> dict[tuple[int, int], dict]:
    """What quality control removed per (regime, seed): the shared synthetic folder's qc.json, without its samples."""
    from LNSynthLib.qc.verdicts import read_qc

    reports = {pair: read_qc(folder / "shared" / "synthetic") for pair, folder in _pairs(work, b)}
    return {pair: {k: v for k, v in qc.items() if k != "samples"} for pair, qc in reports.items() if qc is not None}


def collect(work: Path, b: dict[str, Any]) -> dict[int, dict[str, dict[int, dict]]]:
    """Finished markers: regime → strategy → seed → marker."""
    out: dict[int, dict[str, dict[int, dict]]] = {}
    for regime in b["regimes"]:
        for key in b["strategies"]:
            for seed in b["seeds"]:
                path = work / f"regime{regime}" / f"seed{seed}" / f"done_{key}.json"
                if path.exists():
                    out.setdefault(regime, {}).setdefault(key, {})[seed] = json.loads(path.read_text(encoding="utf-8"))
    return out


def _write(args: argparse.Namespace, b: dict[str, Any], work: Path, skipped: dict[str, str],
           ddpm: dict, wall_s: float, load_start: float) -> tuple[Path, Path]:
    from experiments.synthesis_report import costs_and_estimate, curves_figure, qc_table, render_markdown

    runs = collect(work, b)
    summaries = {regime: grid.summarize(by_strategy) for regime, by_strategy in runs.items()}
    costs, estimate = costs_and_estimate(b, runs, ddpm, FULL)
    qc = finished_qc(work, b)
    name = "synthesis_quick" if args.quick else "synthesis"
    payload = {"quick": bool(args.quick), "budget": b, "full_budget": FULL, "skipped": skipped,
               "wall_s": round(wall_s, 1), "load_average": {"start": load_start, "end": os.getloadavg()[0]},
               "ln_ddpm": {f"regime{r}_seed{s}": v for (r, s), v in ddpm.items()},
               "summary": {str(r): s for r, s in summaries.items()}, "costs": costs, "full_run_estimate": estimate,
               "quality_control": {f"regime{r}_seed{s}": v for (r, s), v in qc.items()},
               "runs": {str(r): v for r, v in runs.items()}}
    body = render_markdown(args, b, skipped, ddpm, summaries, runs, costs, estimate, wall_s, load_start,
                           FULL_RUN_LIMIT_S) + qc_table(qc)
    if runs:
        first = next(iter(runs))
        png = curves_figure(runs, work / f"regime{first}" / f"seed{min(b['seeds'])}" / "shared" / "ln_ddpm" / "loss.csv",
                            Path(args.results_dir) / f"{name}_curves.png")
        body += (f"\n\n![LN-DDPM loss and nnU-Net train/val loss per epoch, regime {first}, first seed]"
                 f"({png.name})\n")
    return write_results(name, payload, body, args.results_dir)
