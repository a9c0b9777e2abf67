"""`lnsynth bench ablation`: the ablation grid of paper 000 Tables 3-4 from one command, at any scale.

Every cell trains nnU-Net on synthetic cases only (Synt strategy) from one LN-DDPM setting
(`ablation_grid.py`) and scores it on held-out real cases. `--config tiny` (default) runs on the
embedded phantom with CPU budgets; `--config paper` uses paper 000's LN-DDPM config and
nnU-Net's standard trainer on your prepared cases (`--cases`, `--test-cases`), for a GPU server.
Results go to `<results-dir>/ablation.{json,md}`; per-cell results stay in `--work`, so a rerun
skips finished cells.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from LNSynthLib.bench.ablation_grid import (
    BASE_MULTIPLE,
    PAPER_MULTIPLES,
    Cell,
    full_grid,
    render_table,
    run_grid,
    select_cells,
)
from LNSynthLib.bench.results import write_results
from LNSynthLib.cli import arg_types as at
from LNSynthLib.cli.options import add_anatomy_opt_outs, add_device

DESCRIPTION = "ablation grid of paper 000 Tables 3-4 (Synt-only nnU-Net per LN-DDPM setting), resumable"
QUICK_CELLS = ["conditioning-ln_ddpm", "conditioning-conditional", "transforms-off", "attention-GA"]
# CPU budgets of --config tiny, and the smaller ones of --quick.
CPU_BUDGET = {"ddpm_iterations": 80, "sample_steps": 10, "nnunet_epochs": 2, "nnunet_iterations": 10,
              "train_cases": 4, "test_cases": 2, "base_multiple": 2, "multiples": (1, 2, 4)}
QUICK_BUDGET = {**CPU_BUDGET, "ddpm_iterations": 30, "sample_steps": 5, "nnunet_epochs": 1, "nnunet_iterations": 5,
                "base_multiple": 1, "multiples": (1, 2)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="tiny", help="tiny: CPU sizes on the phantom; paper: paper 000 sizes")
    parser.add_argument("--cases", type=at.input_path, default=None, help="prepared training cases (paper scale)")
    parser.add_argument("--test-cases", type=at.input_path, default=None, help="prepared held-out test cases")
    parser.add_argument("--work", default="bench_ablation", help="folder for models, synthetic sets and cells")
    parser.add_argument("--cells", nargs="+", default=None, metavar="CELL", help="only these cells (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--quick", action="store_true", help=f"cells {', '.join(QUICK_CELLS)} at minimal budgets")
    add_device(parser)
    add_anatomy_opt_outs(parser)


def budget(args: argparse.Namespace) -> dict[str, Any]:
    """The sizes of this run: paper 000's with --config paper, else the CPU (or --quick) budgets."""
    if args.config == "paper":
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
    from LNSynthLib.metrics.segmentation import METRIC_NAMES

    payload = {"config": args.config, "quick": bool(args.quick), "budget": b, "seeds": list(args.seeds),
               "cells": [c.name for c in cells], "ran_now": ran, "wall_s": round(time.monotonic() - started, 1),
               "results": results}
    cell_times = ", ".join(f"{r['cell']['name']} {r.get('wall_s', 0) / 60:.1f}" for r in results)
    total = sum(r.get("wall_s", 0) for r in results) / 60
    body = (_markdown(args, b, cells, render_table(results, METRIC_NAMES))
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
    """Train (or reuse) the cell's LN-DDPM, sample its synthetic set, train Synt-only nnU-Net, score it."""
    from LNSynthLib.diffusion.config import load_config
    from LNSynthLib.diffusion.sample.sampling import sample_cases
    from LNSynthLib.diffusion.train.training import train
    from LNSynthLib.pipeline import (
        Layout,
        PipelineSettings,
        _with_user_cases,
        selected_datasets,
        train_and_predict,
    )
    from LNSynthLib.report.report import evaluate_predictions

    t0 = time.monotonic()
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
    layout = _with_user_cases(Layout(folder), train_root, test_root)
    (folder / "synthetic").unlink(missing_ok=True)
    (folder / "synthetic").symlink_to(synthetic, target_is_directory=True)
    settings = PipelineSettings(ddpm_config=args.config, strategies=("synt",), synt_per_case=cell.multiple,
                                nnunet_epochs=b["nnunet_epochs"], nnunet_iterations=b["nnunet_iterations"],
                                nnunet_val_iterations=2, seed=seed, device=args.device,
                                nnunet_patch_size=None if args.config == "paper" else (32, 32, 32),
                                qc=False)   # paper 000's grid: every sample, unfiltered
    (dataset_id, name, *_), = selected_datasets(settings)
    prediction_set, = train_and_predict(layout, settings, _nnunet_device(args.device))
    labels = layout.nnunet / "nnUNet_raw" / f"Dataset{dataset_id:03d}_{name}" / "labelsTs"
    per_case, summary = evaluate_predictions(labels, prediction_set.folder)
    return {"segmentation": summary, "per_case": per_case, "ddpm_config": args.config, "ddpm_overrides": overrides,
            "ddpm_checkpoint": str(checkpoint), "synthetic_cases": len(list(synthetic.glob("*_synt_*"))),
            "settings": json.loads(json.dumps(asdict(settings), default=str)),
            "wall_s": round(time.monotonic() - t0, 1)}


def _nnunet_device(device: str) -> str:
    from LNSynthLib.devices import nnunet_device

    return nnunet_device(device)


def _markdown(args: argparse.Namespace, b: dict[str, Any], cells: list[Cell], table: str) -> str:
    scale = ("paper 000 sizes (LN-DDPM `paper` config, nnU-Net's standard trainer)" if args.config == "paper" else
             f"CPU sizes on the embedded phantom: {b['train_cases']} training and {b['test_cases']} test cases "
             f"(64³, 1 mm), LN-DDPM `{args.config}` for {b['ddpm_iterations']} iterations, DDIM-{b['sample_steps']} "
             f"sampling, nnU-Net {b['nnunet_epochs']} epochs × {b['nnunet_iterations']} iterations on 32³ patches; "
             f"base multiple {b['base_multiple']}× (multiples {', '.join(f'{m}×' for m in b['multiples'])} "
             "stand in for the paper's 5/10/20×)")
    caveat = "" if args.config == "paper" else (
        "\n\n**What these numbers can and cannot show.** At this size every model is far from trained: "
        "the LN-DDPM has seen a few dozen batches and nnU-Net a few dozen iterations, on synthetic "
        "phantom data with one seed. The table proves that every cell of the grid runs end to end "
        "(training, sampling, Synt-only export, nnU-Net, metrics) and shows the format of Tables 3-4; "
        "differences between rows are noise, not evidence for or against any setting. Run it with "
        "`--config paper --cases … --test-cases …` on a GPU server for numbers comparable with the paper.")
    return (f"Ablation grid of paper 000 Tables 3-4 (each row a Synt-only nnU-Net training) at {scale}.\n\n"
            f"Cells run: {', '.join(c.name for c in cells)}; seeds {', '.join(map(str, args.seeds))}. "
            f"Command: `lnsynth bench ablation --config {args.config}"
            f"{' --quick' if args.quick else ''}{' --cells ' + ' '.join(args.cells) if args.cells else ''}"
            f" --seeds {' '.join(map(str, args.seeds))}`.{caveat}\n\n{table}")
