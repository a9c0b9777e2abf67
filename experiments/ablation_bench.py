"""`python -m experiments ablation`: paper 000's Tables 1, 2, 3 and 4a-c from one command, at any scale.

Every cell trains nnU-Net (Real, Synt or Real + Synt, as the paper's table does) on data from one
LN-DDPM setting (`ablation_grid.py`) and scores it on held-out real cases; Table 1 scores the
synthetic sets of LN-DDPM and Med-DDPM with the Real cell's model. `--config tiny` (default) runs on
the embedded phantom with CPU budgets (a smoke run: numbers not comparable with the paper);
`--config paper` uses paper 000's LN-DDPM config, pipeline settings (`PipelineSettings.paper`: no
quality control, nnU-Net's standard trainer) and anatomy guard on your prepared cases (`--cases`,
`--test-cases`), for a GPU server. Results go to `<results-dir>/ablation.{json,md}`, the tables in
the paper's layout with the paper's numbers beside ours; per-cell results stay in `--work`, so a
rerun skips finished cells.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from experiments.ablation_grid import (
    BASE_MULTIPLE,
    PAPER_MULTIPLES,
    Cell,
    full_grid,
    render_table,
    run_grid,
    select_cells,
)
from experiments.ablation_tables import paper_tables
from LNSynthLib.atomic import write_text_atomic
from LNSynthLib.bench.results import write_results
from LNSynthLib.cli import arg_types as at
from LNSynthLib.cli.options import add_anatomy_opt_outs, add_device
from LNSynthLib.diffusion.choices import PAPER_000_CONFIGS

DESCRIPTION = "paper 000 Tables 1, 2, 3, 4a-c (one nnU-Net per cell, paper's layout and numbers), resumable"
# --quick: the cells every paper table needs (Tables 1-4c), at minimal budgets
QUICK_CELLS = ["real", "conditioning-gscond_ln_only", "conditioning-conditional", "conditioning-ln_ddpm",
               "conditioning-med_ddpm", "multiple-1x", "multiple-2x", "multiple-4x", "realsynt-med_ddpm",
               "transforms-off", "attention-LA", "attention-GA"]
# CPU budgets of --config tiny, and the smaller ones of --quick.
CPU_BUDGET = {"ddpm_iterations": 80, "sample_steps": 10, "nnunet_epochs": 2, "nnunet_iterations": 10,
              "train_cases": 4, "test_cases": 2, "base_multiple": 2, "multiples": (1, 2, 4)}
QUICK_BUDGET = {**CPU_BUDGET, "ddpm_iterations": 30, "sample_steps": 5, "nnunet_epochs": 1, "nnunet_iterations": 5}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="tiny", help="tiny: CPU sizes on the phantom (smoke); paper or "
                                                         "paper-bf16: paper 000 sizes on --cases (GPU server)")
    parser.add_argument("--cases", type=at.input_path, default=None, help="prepared training cases (paper scale)")
    parser.add_argument("--test-cases", type=at.input_path, default=None, help="prepared held-out test cases")
    parser.add_argument("--work", default="bench_ablation", help="folder for models, synthetic sets and cells")
    parser.add_argument("--cells", nargs="+", default=None, metavar="CELL", help="only these cells (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--quick", action="store_true", help=f"cells {', '.join(QUICK_CELLS)} at minimal budgets")
    add_device(parser)
    parser.add_argument("--lpips-weights", default=None, help="MedicalNet resnet_10_23dataset.pth for Table 1's LPIPS")
    add_anatomy_opt_outs(parser)


def budget(args: argparse.Namespace) -> dict[str, Any]:
    """The sizes of this run: paper 000's with --config paper, else the CPU (or --quick) budgets."""
    if args.config in PAPER_000_CONFIGS:
        return {"ddpm_iterations": None, "sample_steps": None, "nnunet_epochs": None, "nnunet_iterations": 250,
                "base_multiple": BASE_MULTIPLE, "multiples": PAPER_MULTIPLES}
    return dict(QUICK_BUDGET if args.quick else CPU_BUDGET)


def run(args: argparse.Namespace) -> tuple[Path, Path]:
    b = budget(args)
    grid = full_grid(tuple(b["multiples"]), b["base_multiple"])
    cells = select_cells(grid, args.cells or (QUICK_CELLS if args.quick else None))
    work = Path(args.work).resolve()
    train_root, test_root = _cases(args, b, work)
    started = time.monotonic()

    def run_cell(cell: Cell, seed: int, folder: Path) -> dict[str, Any]:
        return run_one_cell(cell, seed, folder, work, args, b, train_root, test_root)

    results, ran = run_grid(cells, list(args.seeds), work, run_cell)
    generation = table1_generation(results, train_root, work, args)
    from LNSynthLib.metrics.segmentation import METRIC_NAMES

    payload = {"config": args.config, "quick": bool(args.quick), "budget": b, "seeds": list(args.seeds),
               "cells": [c.name for c in cells], "ran_now": ran, "wall_s": round(time.monotonic() - started, 1),
               "results": results, "generation": generation}
    cell_times = ", ".join(f"{r['cell']['name']} {r.get('wall_s', 0) / 60:.1f}" for r in results)
    total = sum(r.get("wall_s", 0) for r in results) / 60
    body = (_markdown(args, b, cells, paper_tables(results, generation, b["base_multiple"], b["multiples"]),
                      render_table(results, METRIC_NAMES))
            + f"\n\nCell times (min, when each cell ran): {cell_times}; {total:.1f} min in all "
              f"(load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: the machine may be shared).")
    return write_results("ablation", payload, body, args.results_dir)


def _cases(args: argparse.Namespace, b: dict[str, Any], work: Path) -> tuple[Path, Path]:
    if args.cases or args.test_cases:
        if not (args.cases and args.test_cases):
            from LNSynthLib.errors import UsageError

            raise UsageError("--cases and --test-cases go together", fix="give both, or neither for the phantom")
        from LNSynthLib.segmentation.leakage import check_prepared_disjoint

        check_prepared_disjoint(args.cases, args.test_cases)
        from LNSynthLib.cli.train_command import check_paper_anatomy

        check_paper_anatomy(args.config, args.cases, args)   # the guard of `lnsynth run --config paper`
        return Path(args.cases).resolve(), Path(args.test_cases).resolve()
    from LNSynthLib.pipeline import Layout, PipelineSettings, make_phantom_cases

    shared = Layout(work / "shared")
    make_phantom_cases(shared, PipelineSettings.demo(n_train_cases=b["train_cases"], n_test_cases=b["test_cases"]))
    return shared.train_cases, shared.test_cases


def run_one_cell(cell: Cell, seed: int, folder: Path, work: Path, args: argparse.Namespace, b: dict[str, Any],
                 train_root: Path, test_root: Path) -> dict[str, Any]:
    """Train (or reuse) the cell's LN-DDPM, sample its synthetic set, train the cell's nnU-Net, score it."""
    from LNSynthLib.pipeline import Layout, _with_user_cases, selected_datasets, train_and_predict
    from LNSynthLib.report.report import evaluate_predictions
    from LNSynthLib.segmentation.nnunet.project import NnUNetProject, model_of

    t0 = time.monotonic()
    layout = _with_user_cases(Layout(folder), train_root, test_root)
    ddpm: dict[str, Any] = {}
    if cell.strategy != "real":
        ddpm = _synthetic_set(cell, seed, work, args, b, train_root)
        (folder / "synthetic").unlink(missing_ok=True)
        (folder / "synthetic").symlink_to(ddpm["synthetic"], target_is_directory=True)
    settings = cell_settings(cell, seed, args, b)
    (dataset_id, name, *_), = selected_datasets(settings)
    prediction_set, = train_and_predict(layout, settings, _nnunet_device(args.device))
    labels = NnUNetProject(layout.nnunet).raw_dataset(dataset_id, name) / "labelsTs"
    per_case, summary = evaluate_predictions(labels, prediction_set.folder)
    return {"segmentation": summary, "per_case": per_case, "ddpm_config": args.config, **ddpm,
            "nnunet_model": str(model_of(prediction_set.training_dir)),
            "settings": json.loads(json.dumps(asdict(settings), default=str)),
            "wall_s": round(time.monotonic() - t0, 1)}


def cell_settings(cell: Cell, seed: int, args: argparse.Namespace, b: dict[str, Any]) -> Any:
    """The cell's pipeline settings: paper 000's (`PipelineSettings.paper`) with --config paper, else CPU sizes
    with the paper's nnU-Net use (each dataset planned on its own, cases drawn uniformly)."""
    from LNSynthLib.pipeline import PipelineSettings

    common = {"ddpm_config": args.config, "strategies": (cell.strategy,), "synt_per_case": max(cell.multiple, 1),
              "nnunet_epochs": b["nnunet_epochs"], "nnunet_iterations": b["nnunet_iterations"], "seed": seed,
              "device": args.device, "paste_variant": False,
              "qc": False}   # paper 000: every sample, unfiltered, the same synthetic set in every table
    paper = PipelineSettings.paper(**common)
    if args.config in PAPER_000_CONFIGS:
        return paper
    return PipelineSettings(**common, nnunet_val_iterations=2, nnunet_patch_size=(32, 32, 32),   # the paper's
                            nnunet_shared_plan=paper.nnunet_shared_plan, nnunet_real_share=paper.nnunet_real_share)


def _synthetic_set(cell: Cell, seed: int, work: Path, args: argparse.Namespace, b: dict[str, Any],
                   train_root: Path) -> dict[str, Any]:
    """Train (or reuse) the cell's LN-DDPM and sample (or extend) its synthetic set; what the result records."""
    from LNSynthLib.diffusion.config import load_config
    from LNSynthLib.diffusion.sample.sampling import sample_cases
    from LNSynthLib.diffusion.train.training import train

    overrides = dict(cell.overrides)
    if b["ddpm_iterations"] is not None:
        overrides.update({"train.iterations": b["ddpm_iterations"],
                          "train.checkpoint_every": b["ddpm_iterations"], "sample.steps": b["sample_steps"]})
    config = load_config(args.config, {**overrides, "train.seed": seed})
    model_dir = work / "models" / f"{cell.model_key}_seed{seed}"
    checkpoint = train(config, train_root, model_dir / "run", resume=True, device=args.device, progress=False)
    synthetic = model_dir / f"synthetic_transforms-{'on' if cell.transforms else 'off'}"
    sample_cases(checkpoint, train_root, synthetic, samples_per_case=cell.multiple, seed=seed,
                 transforms=cell.transforms, device=args.device, progress=False)
    return {"ddpm_overrides": overrides, "ddpm_checkpoint": str(checkpoint), "synthetic": str(synthetic),
            "synthetic_cases": len(list(synthetic.glob("*_synt_*")))}


def cell_samples(synthetic: Path, multiple: int, view: Path) -> Path:
    """A folder of links to the first `multiple` samples per case: the set the cell trained on (the model's folder
    may hold more, sampled for a larger Table 4a multiple)."""
    from LNSynthLib.cases import list_cases

    view.mkdir(parents=True, exist_ok=True)
    for folder in list_cases(synthetic):
        index = folder.name.rpartition("_synt_")[2]
        if index.isdigit() and int(index) < multiple and not (view / folder.name).exists():
            (view / folder.name).symlink_to(folder.resolve(), target_is_directory=True)
    return view


def table1_generation(results: list[dict[str, Any]], train_root: Path, work: Path,
                      args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Table 1 per method: generation metrics of the samples its Synt cell trained on (first seed), NodeRecall_synt
    by the Real cell's model; kept in `work/generation/` so a rerun does not compute them again."""
    from experiments.ablation_tables import TABLE1_CELLS
    from LNSynthLib.report.generation_eval import evaluate_generation

    first = {}
    for r in results:
        first.setdefault(r["cell"]["name"], r)
    real = first.get("real")
    out = {}
    for method, name in TABLE1_CELLS.items():
        if name not in first or real is None:
            continue
        cached = work / "generation" / f"{name}_seed{first[name]['seed']}.json"
        if not cached.is_file():
            samples = cell_samples(Path(first[name]["synthetic"]), first[name]["cell"]["multiple"],
                                   cached.with_suffix("") / "samples")
            result = evaluate_generation(train_root, samples, work_dir=cached.with_suffix(""),
                                         lpips_weights=args.lpips_weights, real_model=real["nnunet_model"],
                                         device=_nnunet_device(args.device), method=method)
            write_text_atomic(cached, json.dumps(result, indent=2, default=str), overwrite=True)
        out[method] = json.loads(cached.read_text(encoding="utf-8"))
    return out


def _nnunet_device(device: str) -> str:
    from LNSynthLib.devices import nnunet_device

    return nnunet_device(device)


def _markdown(args: argparse.Namespace, b: dict[str, Any], cells: list[Cell], tables: str, table: str) -> str:
    paper = args.config in PAPER_000_CONFIGS
    scale = (f"paper 000 sizes (LN-DDPM `{args.config}` config, nnU-Net's standard trainer)" if paper else
             f"CPU sizes on the embedded phantom: {b['train_cases']} training and {b['test_cases']} test cases "
             f"(64³, 1 mm), LN-DDPM `{args.config}` for {b['ddpm_iterations']} iterations, DDIM-{b['sample_steps']} "
             f"sampling, nnU-Net {b['nnunet_epochs']} epochs × {b['nnunet_iterations']} iterations on 32³ patches; "
             f"base multiple {b['base_multiple']}× (multiples {', '.join(f'{m}×' for m in b['multiples'])} "
             "stand in for the paper's 5/10/20×)")
    caveat = "" if paper else (
        "\n\n**SMOKE RUN: NOT COMPARABLE WITH THE PAPER.** At this size every model is far from trained: "
        "the LN-DDPM has seen a few dozen batches and nnU-Net a few dozen iterations, on synthetic "
        "phantom data with one seed. The table proves that every cell of the grid runs end to end "
        "(training, sampling, Real / Synt / Real + Synt export, nnU-Net, metrics) and shows the format of "
        "Tables 1-4; "
        "differences between rows are noise, not evidence for or against any setting. Run it with "
        "`--config paper --cases … --test-cases …` on a GPU server for numbers comparable with the paper.")
    return (f"Paper 000 Tables 1-4 (each row one nnU-Net training) at {scale}.\n\n"
            f"Cells run: {', '.join(c.name for c in cells)}; seeds {', '.join(map(str, args.seeds))}. "
            f"Command: `python -m experiments ablation --config {args.config}"
            f"{' --quick' if args.quick else ''}{' --cells ' + ' '.join(args.cells) if args.cells else ''}"
            f" --seeds {' '.join(map(str, args.seeds))}`.{caveat}\n\n"
            "## Paper 000's tables, the paper's numbers with ours beneath\n\n"
            "Out-of-scope baselines (Pix2pix, SPADE, BrainLDM, NASDM, Echo from noise) show the paper's numbers "
            "only; Med-DDPM is the `med_ddpm` conditioning variant on the shared U-Net.\n\n"
            f"{tables}\n\n## Every cell, grouped by factor (including the choices the paper leaves open)\n\n"
            f"{table}")
