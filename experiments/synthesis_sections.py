"""Sections of the synthesis benchmark's report that say *why*: the gate, the plans, the factors, the false positives.

- the realism gate of every LN-DDPM, round by round, each figure generated against real;
- the nnU-Net plan hash(es) every strategy trained with, so unequal segmenters cannot hide;
- the factor table: each factor against LN-DDPM 10× (the row it changes one thing of), with CIs;
- the Real-vs-Real spread: Real trained again with another nnU-Net seed, the noise floor of every Δ;
- the false positives of each strategy split by the phantom tissue they fell on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from experiments import synthesis_grid as grid
from LNSynthLib.bench.results import markdown_table
from LNSynthLib.phantom.false_positives import ORDER

REAL_RERUN_KEY = "real_rerun"


def _label(key: str) -> str:
    return grid.BY_KEY[key].label if key in grid.BY_KEY else key


def _num(value: Any, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def gate_table(ddpm: Mapping[tuple[int, int], dict]) -> str:
    """One row per (regime, seed, round): every gate figure as generated (real), and what failed."""
    names = ["node_mean_hu", "node_sd_hu", "abs_global_offset_hu", "fat_in_node_fraction", "texture_ratio",
             "ln_fat_contrast_hu", "lookalike_blobs"]
    rows = []
    for (regime, seed), record in sorted(ddpm.items()):
        for entry in record.get("rounds", []):
            gate = entry.get("gate")
            if not gate:
                continue
            figures = gate["figures"]
            cells = [f"{_num(figures[n]['generated'], 2)} ({_num(figures[n]['real'], 2)})" for n in names]
            plateau = gate.get("plateau") or {}
            rows.append([regime, seed, entry["iterations"], entry.get("train_s"), *cells,
                         _num(plateau.get("relative_drop"), 3), "pass" if gate["passed"] else ", ".join(gate["failed"]),
                         "**used**" if entry.get("checkpoint") == record.get("checkpoint") else ""])
    if not rows:
        return ""
    return markdown_table(["regime", "seed", "iterations", "train s", "node HU", "node SD", "|offset| HU",
                           "fat in node", "texture", "LN−fat HU", "look-alikes", "loss drop", "gate", "model"], rows)


def plan_hashes(by_seed: Mapping[int, Mapping[str, Any]]) -> str:
    """The distinct plan hashes a strategy trained with over its seeds."""
    hashes = sorted({str(m.get("plan_hash")) for m in by_seed.values() if m.get("plan_hash")})
    return ", ".join(hashes) if hashes else "n/a"


def plan_table(runs: Mapping[str, Mapping[int, Mapping[str, Any]]]) -> str:
    """Per strategy and seed: the plan hash, stages, features and normalization window it trained with."""
    rows = []
    for key, by_seed in runs.items():
        for seed, marker in sorted(by_seed.items()):
            plan = marker.get("plan") or {}
            rows.append([_label(key), seed, marker.get("plan_hash", "n/a"), plan.get("stages"),
                         plan.get("features_per_stage"), plan.get("patch_size"), plan.get("clip_hu"),
                         marker.get("trainer", "n/a")])
    return markdown_table(["strategy", "seed", "plan hash", "stages", "features", "patch", "CT clip HU", "trainer"],
                          rows) if rows else ""


def factor_table(summary: Mapping[str, Mapping[str, Any]], runs: Mapping[str, Mapping[int, Mapping[str, Any]]]) -> str:
    """Each factor row against LN-DDPM 10× of the same seeds (Δ = factor − LN-DDPM 10×)."""
    base = runs.get(grid.LN_DDPM_KEY)
    rows = []
    for key in grid.FACTORS:
        if key not in runs or not base:
            continue
        diff = grid.paired_differences(base, runs[key])
        dsc, prec = diff.get("DSC"), diff.get("Precision")
        if not dsc:
            continue
        rows.append([_label(key), grid.BY_KEY[key].factor, dsc["n_seeds"], grid._ci(dsc), grid._ci(prec),
                     grid._ci(diff.get("NodeRecall")), f"{dsc['n_cases']} ({dsc['n_nodes']})"])
    return markdown_table(["strategy", "what it changes", "seeds", "ΔDSC vs LN-DDPM 10× [95 % CI]",
                           "ΔPrecision", "ΔNodeRecall", "test cases (nodes)"], rows) if rows else ""


def spread_sentence(runs: Mapping[str, Mapping[int, Mapping[str, Any]]]) -> str:
    """Real against Real trained with another nnU-Net seed: how far two trainings of one strategy differ."""
    real, rerun = runs.get(grid.REAL_KEY), runs.get(REAL_RERUN_KEY)
    if not real or not rerun:
        return ("Real-vs-Real spread: not measured in this run (Real trained with a second nnU-Net seed, "
                f"`--strategies {REAL_RERUN_KEY}`, gives it).")
    diff = grid.paired_differences(real, rerun).get("DSC")
    if not diff:
        return ""
    return (f"Real-vs-Real spread (Real trained again with another nnU-Net seed, same data): ΔDSC "
            f"{grid._ci(diff)} over {diff['n_seeds']} seed(s); a difference between strategies smaller than this "
            "is within training noise.")


def can_and_cannot_show(summaries: Mapping[int, Mapping[str, Any]],
                        runs: Mapping[int, Mapping[str, Mapping[int, Mapping[str, Any]]]]) -> list[str]:
    """The reading rule of the tables: a difference smaller than two trainings of Real differ is not evidence."""
    lines = []
    for regime, summary in summaries.items():
        real, rerun = runs.get(regime, {}).get(grid.REAL_KEY), runs.get(regime, {}).get(REAL_RERUN_KEY)
        spread = grid.paired_differences(real, rerun).get("DSC") if real and rerun else None
        if not spread:
            continue
        width = abs(spread["estimate"])
        beyond = [f"{grid.BY_KEY[key].label} ({entry['vs_real']['DSC']['estimate']:+.3f})"
                  for key, entry in summary.items()
                  if key not in (grid.REAL_KEY, REAL_RERUN_KEY) and entry.get("vs_real", {}).get("DSC")
                  and round(abs(entry["vs_real"]["DSC"]["estimate"]), 3) > round(width, 3)]
        lines.append(f"- {regime} real cases: Real trained again with another nnU-Net seed moved DSC by "
                     f"{spread['estimate']:+.3f} over {spread['n_seeds']} seed(s). Beyond that: "
                     f"{', '.join(beyond) if beyond else 'no strategy'}.")
    if not lines:
        return []
    return ["**What this run can and cannot show.** The 95 % intervals resample test cases (and seeds when there "
            "are several), not trainings: two nnU-Net trainings of the same data differ by the Real-vs-Real spread "
            "below, so a difference smaller than that spread is not evidence for either strategy, however narrow "
            "its interval. Only more seeds per strategy (each a new nnU-Net training) put that spread into the "
            "intervals.", "", *lines, ""]


def fp_table(runs: Mapping[str, Mapping[int, Mapping[str, Any]]]) -> str:
    """False-positive components per strategy (summed over seeds), by what they fell on."""
    rows = []
    for key, by_seed in runs.items():
        splits = [m["false_positives"] for m in by_seed.values() if m.get("false_positives")]
        if not splits:
            continue
        comps = {name: sum(s["components"][name] for s in splits) for name in ORDER}
        voxels = {name: sum(s["voxels"][name] for s in splits) for name in ORDER}
        rows.append([_label(key), len(splits), *[f"{comps[n]} ({voxels[n]})" for n in ORDER],
                     sum(comps.values())])
    return markdown_table(["strategy", "seeds", *ORDER, "total components"], rows) if rows else ""
