"""The Markdown of `python -m experiments synthesis`: settings, tables with CIs, LN-DDPM fidelity, costs and the estimate."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from experiments import synthesis_grid as grid
from experiments import synthesis_sections as S
from LNSynthLib.bench.results import markdown_table

# The same work on this 2-core machine when idle (experiments/results/pipeline.md, seed 0): `tiny`
# LN-DDPM 300 iterations in 129.8 s, 12 DDIM-20 samples in 55.9 s, two nnU-Net runs of 10 x (30 + 2)
# iterations at 32³ in 570.9 s (planning and prediction included, so an upper bound per iteration).
# measured / idle is how much slower each kind of work ran here; the estimate is scaled back by it.
IDLE_COSTS = {"ddpm_s_per_iteration": 129.8 / 300, "sampling_s_per_sample": 55.9 / 12,
              "nnunet_s_per_iteration": 570.9 / (2 * 10 * 32)}
SCALED_BY = {"ln_ddpm": "ddpm_s_per_iteration", "fidelity_checks": "ddpm_s_per_iteration",
             "sampling": "sampling_s_per_sample", "nnunet_training": "nnunet_s_per_iteration",
             "nnunet_overhead": "nnunet_s_per_iteration", "prediction": "nnunet_s_per_iteration"}


def _groups(runs: Mapping[int, Mapping[str, Mapping[int, dict]]]) -> list[dict]:
    """One marker per group run (pasted and unpasted share one pipeline call and its timings)."""
    seen, out = set(), []
    for regime, by_strategy in runs.items():
        for key, by_seed in by_strategy.items():
            for seed, marker in by_seed.items():
                ident = (regime, seed, grid.BY_KEY[key].group)
                if ident not in seen:
                    seen.add(ident)
                    out.append(marker)
    return out


def costs_and_estimate(b: Mapping[str, Any], runs: Mapping[int, Mapping[str, Mapping[int, dict]]],
                       ddpm: Mapping[tuple[int, int], dict], full: Mapping[str, Any]) -> tuple[dict, dict]:
    """Per-unit costs measured in this run, and the seconds the full benchmark would take with them."""
    rounds = [r for d in ddpm.values() for r in d.get("rounds", [])]
    ddpm_iters = sum(d.get("iterations", 0) for d in ddpm.values())
    samples = sum(d.get("samples", 0) for d in ddpm.values())
    markers = [m for by_s in runs.values() for by_seed in by_s.values() for m in by_seed.values()]
    groups = _groups(runs)
    train_s = sum(m.get("nnunet_train_s", 0.0) for m in markers)
    nn_iters = sum(m.get("nnunet_epochs_run", 0) * (b["nnunet_iterations"] + b["nnunet_val_iterations"])
                   for m in markers)
    stage_s = sum(g["stages_s"].get("nnunet", 0.0) + g["stages_s"].get("evaluate", 0.0) for g in groups)
    predict = [m["predict_s_per_case"] for m in markers if m.get("predict_s_per_case")]
    predict_s = sum(predict) / len(predict) if predict else 0.0
    n_runs = max(1, len(markers))
    overhead = max(0.0, (stage_s - train_s) / n_runs - predict_s * b["test_cases"])
    costs = {"ddpm_s_per_iteration": sum(r["train_s"] for r in rounds) / ddpm_iters if ddpm_iters else 0.0,
             "fidelity_check_s": sum(r.get("seconds", 0.0) for r in rounds) / len(rounds) if rounds else 0.0,
             "sampling_s_per_sample": sum(d.get("sampling_s", 0.0) for d in ddpm.values()) / samples if samples else 0.0,
             "nnunet_s_per_iteration": train_s / nn_iters if nn_iters else 0.0,
             "nnunet_run_overhead_s": overhead, "predict_s_per_case": predict_s}
    costs = {k: round(v, 3) for k, v in costs.items()}
    pairs = len(full["regimes"]) * len(full["seeds"])
    n_runs = grid.planned_runs(full)
    # Iterations to pass the fidelity check as measured here; the full budget when a model did not pass.
    passed = [d.get("iterations", 0) for d in ddpm.values() if d.get("passed")]
    measured_iters = (max(passed) if passed and len(passed) == len(ddpm) else full["ddpm_max_iterations"])
    step = full["ddpm_check_every"]
    measured_iters = min(full["ddpm_max_iterations"], -(-measured_iters // step) * step)   # the full run checks every `step`
    plan = {"ddpm_iterations": pairs * measured_iters,
            "samples": len(full["seeds"]) * sum(full["regimes"]) * grid.MAX_MULTIPLE,
            "nnunet_iterations": n_runs * full["nnunet_max_epochs"]
            * (full["nnunet_iterations"] + full["nnunet_val_iterations"]),
            "nnunet_runs": n_runs, "predictions": n_runs * full["test_cases"]}
    estimate = grid.estimate_full_run(costs, plan)
    fidelity_checks = pairs * max(1, measured_iters // step)
    estimate["fidelity_checks"] = round(fidelity_checks * costs["fidelity_check_s"], 1)
    estimate["total"] = round(estimate["total"] + estimate["fidelity_checks"], 1)
    slowdown = {k: round(max(1.0, costs[k] / v), 2) if costs[k] else 1.0 for k, v in IDLE_COSTS.items()}
    idle = {part: round(v / slowdown[SCALED_BY[part]], 1) for part, v in estimate.items() if part != "total"}
    idle["total"] = round(sum(idle.values()), 1)
    return costs, {"plan": plan, "seconds": estimate, "slowdown_vs_idle": slowdown, "seconds_idle": idle}


def render_markdown(args: argparse.Namespace, b: Mapping[str, Any], skipped: Mapping[str, str],
                    ddpm: Mapping[tuple[int, int], dict], summaries: Mapping[int, dict], runs: Mapping[int, dict],
                    costs: Mapping[str, float], estimate: Mapping[str, Any], wall_s: float, load_start: float,
                    limit_s: float) -> str:
    import os

    command = command_line(args)
    parts = [f"Command: `{command}`. Phantom data (64³, 1 mm); regimes {list(b['regimes'])} real training cases; "
             f"{b['test_cases']} held-out test cases per seed (phantom seeds never used for training or any choice); "
             f"seeds {list(b['seeds'])}.", "",
             f"**nnU-Net rule, the same for every strategy:** patch {'x'.join(map(str, b['patch']))}, "
             f"{b['nnunet_iterations']} training + {b['nnunet_val_iterations']} validation iterations per epoch, "
             f"max {b['nnunet_max_epochs']} epochs, stop when the smoothed validation loss (EMA) has not improved by "
             f"more than {b['min_delta']} for {b['patience']} epochs; {_fold_words(b)}; test images predicted "
             f"with sliding-window step {b.get('step_size') or 0.5} of the patch.", "",
             f"**LN-DDPM:** one per (regime, seed), `tiny` config, trained in rounds (150 iterations, then every "
             f"{b['ddpm_check_every']}, max {b['ddpm_max_iterations']}) until its samples pass the realism gate "
             "(`diffusion/sample/realism_gate.py`; the last round's model when none passes), sampled once "
             f"({grid.MAX_MULTIPLE if not args.quick else 'the largest multiple used'} per real case) for all strategies.",
             "", *([f"**Seeds:** {', '.join(grid.BY_KEY[k].label for k in grid.PRIMARY)} on every seed; the other "
                    f"strategies on the first {b['secondary_seeds']}.", ""] if b.get("secondary_seeds") else [])]
    parts += S.can_and_cannot_show(summaries, runs)
    if skipped:
        parts += ["**Skipped (the pipeline does not offer them yet):**", ""]
        parts += [f"- {grid.BY_KEY[k].label}: {why}" for k, why in skipped.items()] + [""]
    for regime, summary in summaries.items():
        parts += [f"## {regime} real training cases", "",
                  "Mean ± sd over seeds; Δ = strategy − Real, paired bootstrap over test cases and seeds "
                  "(95 % CI, **(sig.)** when it excludes 0).", "", grid.results_table(summary), ""]
        parts += [f"- {line}" for line in grid.significance_sentences(summary, f"{regime} cases")] + [""]
        versus = grid.copy_paste_table(summary)
        if versus:
            parts += ["LN-DDPM against the copy-paste baseline directly (Δ = strategy − copy-paste, paired the same way):",
                      "", versus, ""]
            parts += [f"- {line}" for line in grid.significance_sentences(summary, f"{regime} cases", "vs_copypaste",
                                                                          "Real + copy-paste")] + [""]
        parts += _stops(runs.get(regime, {}))
        by_strategy = runs.get(regime, {})
        parts += [f"- {S.spread_sentence(by_strategy)}", ""]
        factors = S.factor_table(summary, by_strategy)
        if factors:
            parts += ["Factors, one at a time (Δ = factor row − LN-DDPM 10× on the same seeds and test cases):", "",
                      factors, ""]
        fps = S.fp_table(by_strategy)
        if fps:
            parts += ["False-positive components (voxels) on the test cases, by the phantom tissue they fell on "
                      "(node border: within 2 voxels of a true node):", "", fps, ""]
        plans = S.plan_table(by_strategy)
        if plans:
            parts += ["nnU-Net plan each run trained with (hash of the resolved configuration and the intensity "
                      "normalization, `segmentation/nnunet/plans.py`):", "", plans, ""]
    parts += ["## LN-DDPM per (regime, seed)", "", markdown_table(
        ["regime", "seed", "iterations", "train s", "passed", "Pearson r", "LN−fat HU (target)", "sampler", "samples",
         "sampling s"],
        [[r, s, d.get("iterations"), d.get("train_s"), d.get("passed"), _f(d.get("fidelity", {}).get("pearson_r")),
          f"{_f(d.get('fidelity', {}).get('ln_fat_contrast_hu'))} ({_f(d.get('fidelity', {}).get('target_ln_fat_contrast_hu'))})",
          f"{d.get('sampler')}, {d.get('prediction')}-prediction", d.get("samples"), d.get("sampling_s")]
         for (r, s), d in ddpm.items()]), ""]
    gates = S.gate_table(ddpm)
    if gates:
        parts += ["Realism gate per round: generated (real) figures on the gate's windows; the model marked used is "
                  "the one every LN-DDPM strategy of that (regime, seed) sampled from.", "", gates, ""]
    seconds = estimate["seconds"]
    work_s = (sum(d.get("train_s", 0.0) + d.get("sampling_s", 0.0) + sum(r.get("seconds", 0.0) for r in d.get("rounds", []))
                  for d in ddpm.values()) + sum(g.get("group_wall_s", 0.0) for g in _groups(runs)))
    idle = estimate["seconds_idle"]
    fits = "fits" if idle["total"] <= limit_s else "does NOT fit"
    span = wall_span_s(ddpm, runs)
    parts += ["## Costs and the full-run estimate", "",
              *([f"Wall time from the first LN-DDPM training to the last finished run, over every invocation: "
                 f"{span / 60:.1f} min.", ""] if span else []),
              f"Work time over every invocation (LN-DDPM training, fidelity checks, sampling, each strategy's "
              f"pipeline run): {work_s / 60:.1f} min; wall time of the last invocation: {wall_s / 60:.1f} min "
              f"(a resumed invocation only redoes what was missing; load average {load_start:.1f} at the start, "
              f"{os.getloadavg()[0]:.1f} at the end, {os.cpu_count()} cores; the machine may be shared, so costs "
              "are upper bounds).", "",
              markdown_table(["cost", "seconds"], [[k, v] for k, v in costs.items()]), "",
              f"Full run (`python -m experiments synthesis`, {len(estimate['plan'])} kinds of work: "
              + ", ".join(f"{k} {v}" for k, v in estimate["plan"].items())
              + f"): about {seconds['total'] / 3600:.2f} h at the costs measured here, without plateau stops "
                f"(every nnU-Net run at its max epochs). Parts (s): "
              + ", ".join(f"{k} {v}" for k, v in seconds.items() if k != "total") + ".", "",
              "Measured here against the same work on the idle machine (pipeline.md), this run was slower by "
              + ", ".join(f"{k.split('_s_per')[0]} {v}×" for k, v in estimate["slowdown_vs_idle"].items())
              + f": scaled back per kind of work, the full run takes about {idle['total'] / 3600:.2f} h on the "
                f"idle 2-core machine with every nnU-Net run at its max epochs, which {fits} the "
                f"{limit_s / 3600:.0f} h limit (plateau stops only shorten it). Parts (s): "
              + ", ".join(f"{k} {v}" for k, v in idle.items() if k != "total") + ".", ""]
    if not args.quick:
        parts += ["**What this can and cannot show.** The data are the embedded phantom (64³ at 1 mm, nodes and "
                  "hard negatives as in `phantom/parameters.py`), not patient CT, and nnU-Net is CPU-sized (half "
                  f"width, at most {b['nnunet_max_epochs']} epochs of {b['nnunet_iterations']} iterations): a "
                  "difference here says how the strategies compare on this phantom with this training, not what "
                  "they do on real scans or with nnU-Net's standard 1000-epoch training. The intervals cover the "
                  "variation over test cases and seeds (each seed draws other training and test cases and trains "
                  "its own LN-DDPM); they do not cover other LN-DDPM settings or phantom designs. Nothing was "
                  "chosen on the test cases: the nnU-Net budget comes from a pilot on the training cases of one "
                  "seed.", ""]
    if args.quick:
        parts += ["**What this quick run can show:** that every stage runs end to end (fidelity-checked LN-DDPM, "
                  "shared sampling, each strategy through the pipeline with plateau stopping, per-case metrics, "
                  "the paired bootstrap). With one seed, a few test cases and minutes of training its differences "
                  "are not evidence for or against any strategy.", ""]
    return "\n".join(parts)


def command_line(args: argparse.Namespace) -> str:
    """The options this report was written with (a `--report-only` report covers every run in its work folder)."""
    words = ["python -m experiments synthesis"] + (["--quick"] if args.quick else [])
    for option in ("regimes", "seeds", "strategies"):
        if getattr(args, option, None):
            words.append(f"--{option} {' '.join(map(str, getattr(args, option)))}")
    if getattr(args, "test_cases", None):
        words.append(f"--test-cases {args.test_cases}")
    if getattr(args, "report_only", False):
        words.append("--report-only")
    return " ".join(words)


def qc_table(qc: Mapping[tuple[int, int], Mapping[str, Any]]) -> str:
    """Per (regime, seed): how many of the shared synthetic pairs quality control rejected, and by which rule."""
    if not qc:
        return ""
    rules = sorted({rule for q in qc.values() for rule in q.get("removed_by_rule", {})})
    rows = [[r, s, f"{q['n_rejected']} / {q['n_samples']}", *[q.get("removed_by_rule", {}).get(x, 0) for x in rules],
             "yes" if q.get("real_model") else "no"] for (r, s), q in sorted(qc.items())]
    return "\n".join(["", "## Quality control of the synthetic pairs (the QC strategies)", "",
                      "Samples failing each rule (a sample can fail several); the QC rows train on the rest. "
                      "The NodeRecall rule uses the Real strategy's nnU-Net of the same (regime, seed).", "",
                      markdown_table(["regime", "seed", "rejected", *rules, "Real model used"], rows), ""])


def _fold_words(b: Mapping[str, Any]) -> str:
    if b.get("nnunet_fold", 0) == "all":
        return ("trained on every training case (nnU-Net fold `all`), so the validation loss is measured on "
                "the training cases (without augmentation): the rule stops when training has converged")
    return f"validation = fold {b.get('nnunet_fold', 0)} of the training cases"


def wall_span_s(ddpm: Mapping[tuple[int, int], dict], runs: Mapping[int, Mapping[str, Mapping[int, dict]]]) -> float | None:
    """Seconds from the first LN-DDPM training to the last finished strategy run, over every invocation."""
    starts = [d["started_at"] for d in ddpm.values() if d.get("started_at")]
    ends = [m["finished_at"] for by_s in runs.values() for by_seed in by_s.values() for m in by_seed.values()
            if m.get("finished_at")]
    return max(ends) - min(starts) if starts and ends else None


def _stops(by_strategy: Mapping[str, Mapping[int, dict]]) -> list[str]:
    rows = []
    for key, by_seed in by_strategy.items():
        records = [m.get("plateau") or {} for m in by_seed.values()]
        rows.append([grid.BY_KEY[key].label, ", ".join(str(r.get("epochs_run", "n/a")) for r in records),
                     ", ".join(str(r.get("reason", "n/a")) for r in records)])
    return ["nnU-Net epochs run per seed and why it stopped:", "",
            markdown_table(["Strategy", "epochs run", "stopped by"], rows), ""]


def _f(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.2f}"


def curves_figure(runs: Mapping[int, Mapping[str, Mapping[int, dict]]], ddpm_loss_csv: Path, png: Path) -> Path | None:
    """LN-DDPM loss and each strategy's nnU-Net train/val loss per epoch for the first (regime, seed)."""
    from LNSynthLib.report.figures import training_curves

    if not runs:
        return None
    regime = next(iter(runs))
    seed = min(s for by_seed in runs[regime].values() for s in by_seed)
    curves = {grid.BY_KEY[k].label: (by_seed[seed].get("plateau") or {}).get("epochs", [])
              for k, by_seed in runs[regime].items() if seed in by_seed}
    loss = []
    if ddpm_loss_csv.exists():
        from LNSynthLib.diffusion.train.loss_plot import read_loss_csv

        loss = read_loss_csv(ddpm_loss_csv)
    return training_curves(loss, curves, png)
