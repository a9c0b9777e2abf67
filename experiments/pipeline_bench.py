"""`python -m experiments pipeline`: the demo comparison (Real vs Real+Synt) over several seeds, mean ± sd.

One demo run per seed (phantom data, LN-DDPM, sampling, nnU-Net per strategy, evaluation) in
its own work folder, so an interrupted benchmark continues where it stopped. On demand only:
it takes several demo runs' time.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from LNSynthLib.bench.results import markdown_table, write_results
from LNSynthLib.cli.options import add_device
from LNSynthLib.metrics.segmentation import METRIC_NAMES

DESCRIPTION = "demo pipeline over several seeds: Real vs Real+Synt segmentation, mean ± sd"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--work", default="bench_pipeline", help="folder for the per-seed runs")
    add_device(parser)
    parser.add_argument("--paste", action="store_true", help="include the pasted Real+Synt variant")
    parser.add_argument("--nnunet-epochs", type=int, default=None)
    parser.add_argument("--ddpm-iterations", type=int, default=None)


def run(args: argparse.Namespace) -> tuple[Path, Path]:
    from LNSynthLib.pipeline import PipelineSettings, run_pipeline

    per_seed: dict[int, dict] = {}
    for seed in args.seeds:
        settings = PipelineSettings.demo(seed=seed, device=args.device, paste_variant=args.paste)
        if args.nnunet_epochs is not None:
            settings = replace(settings, nnunet_epochs=args.nnunet_epochs)
        if args.ddpm_iterations is not None:
            settings = replace(settings, ddpm_overrides={**settings.ddpm_overrides,
                                                         "train.iterations": args.ddpm_iterations})
        work = Path(args.work) / f"seed_{seed}"
        report = run_pipeline(work, settings)
        metrics = json.loads((report.parent / "metrics.json").read_text(encoding="utf-8"))
        timings = json.loads((work / "timings.json").read_text(encoding="utf-8"))
        per_seed[seed] = {"segmentation": metrics["segmentation"], "generation": metrics["generation"],
                          "stages_s": timings["stages_s"], "settings": timings.get("settings", {})}
    summary = summarize_runs(per_seed)
    return write_results("pipeline", {"seeds": args.seeds, "summary": summary, "per_seed": per_seed},
                         render_markdown(args.seeds, per_seed, summary), args.results_dir)


def render_markdown(seeds: list[int], per_seed: dict, summary: dict[str, dict[str, tuple[float, float]]]) -> str:
    """Settings, the mean ± sd table (strategy, method, metrics), DSC per seed and stage times per seed."""
    rows = [[*key.split(" | "), *[_pm(stats.get(m)) for m in METRIC_NAMES]] for key, stats in summary.items()]
    stage_names = list(next(iter(per_seed.values()))["stages_s"].keys())
    keys = list(summary)
    dsc_rows = [[seed, *[_value(run, key, "DSC") for key in keys], *[_value(run, key, "NodeRecall") for key in keys]]
                for seed, run in per_seed.items()]
    return (f"Demo pipeline (phantom data) over seeds {seeds}; {describe_settings(per_seed)}. The machine "
            "may have been shared with other jobs, so stage times are upper bounds. Stage times are summed "
            "over every run of a seed's work folder (a resumed run adds only what it redid).\n\n"
            + markdown_table(["Strategy", "Method", *METRIC_NAMES], rows) + "\n\nDSC and NodeRecall per seed:\n\n"
            + markdown_table(["seed", *[f"DSC {_label(k)}" for k in keys],
                              *[f"NodeRecall {_label(k)}" for k in keys]], dsc_rows)
            + "\n\nStage times per seed (s):\n\n"
            + markdown_table(["seed", *stage_names], [[s, *v["stages_s"].values()] for s, v in per_seed.items()]))


def describe_settings(per_seed: dict) -> str:
    """The sizes that decide what the numbers can show, from the first seed's recorded settings."""
    from LNSynthLib.segmentation.nnunet.runner import patch_label

    s = next(iter(per_seed.values())).get("settings") or {}
    if not s:
        return "settings not recorded"
    epochs = s.get("nnunet_epochs")
    trainer = "nnU-Net's standard trainer" if epochs is None else \
        f"nnU-Net {epochs} epochs x {s.get('nnunet_iterations')} iterations"
    patch = s.get("nnunet_patch_size")
    patch_text = f"patch {patch_label(patch)}" if patch else "planned patch"
    ddpm = s.get("ddpm_overrides", {}).get("train.iterations", "config")
    return (f"{s.get('n_train_cases')} training and {s.get('n_test_cases')} test cases, LN-DDPM "
            f"{s.get('ddpm_config')} ({ddpm} iterations), {trainer}, {patch_text}, "
            f"{s.get('synt_per_case')} synthetic cases per real case")


def _label(key: str) -> str:
    """`Real | -` → `Real`, `Real + Synt | LN-DDPM` → `Real + Synt (LN-DDPM)`: no `|` inside a table cell."""
    strategy, method = key.split(" | ")
    return strategy if method == "-" else f"{strategy} ({method})"


def _row_key(row: dict) -> str:
    return f"{row['strategy']} | {row['method']}"


def _value(run: dict, key: str, metric: str) -> str:
    for row in run["segmentation"]:
        if _row_key(row) == key:
            v = row.get(metric)
            return "n/a" if v is None or not np.isfinite(v) else f"{v:.4f}"
    return "n/a"


def summarize_runs(per_seed: dict[int, dict]) -> dict[str, dict[str, tuple[float, float]]]:
    """(mean, sd) of each metric per strategy/method over seeds (NaN runs skipped)."""
    values: dict[str, dict[str, list[float]]] = {}
    for run in per_seed.values():
        for row in run["segmentation"]:
            key = _row_key(row)
            for m in METRIC_NAMES:
                v = row.get(m)
                if v is not None and np.isfinite(v):
                    values.setdefault(key, {}).setdefault(m, []).append(float(v))
    return {key: {m: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)
                  for m, v in metrics.items()} for key, metrics in values.items()}


def _pm(stat: tuple[float, float] | None) -> str:
    return "n/a" if stat is None else f"{stat[0]:.4f} ± {stat[1]:.4f}"
