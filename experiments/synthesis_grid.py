"""What `python -m experiments synthesis` compares, and how its results become tables (no training here).

Strategies are data: each names the pipeline strategy and settings it runs through
`PipelineSettings` (`strategies`, `synt_per_case`, `paste_variant`, `qc`). Strategies that share
one pipeline call (a `group`: Real + Synt and its pasted variant train from one export run) are
run together. A strategy the pipeline does not know yet (another strategy name, or a setting
`PipelineSettings` lacks) is skipped with the reason, so the list can name what is being added
elsewhere and the benchmark picks it up once it exists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from LNSynthLib.bench.results import markdown_table
from LNSynthLib.metrics.segmentation import METRIC_NAMES
from LNSynthLib.report.confidence import FEW_CASES, metric_difference

REPORTED = tuple(m for m in METRIC_NAMES if m != "IoU")   # DSC, Recall, Precision, ASSD, NodeRecall
REAL_KEY = "real"
COPY_PASTE_KEY = "copypaste"   # the baseline the LN-DDPM strategies are also compared with directly


@dataclass(frozen=True)
class Strategy:
    key: str                       # marker and table key
    label: str
    group: str                     # strategies of one group run in one pipeline call
    pipeline_strategy: str         # a name of pipeline.PIPELINE_STRATEGIES (or one being added)
    synt_per_case: int = 1
    paste: bool = False            # the pasted row of a group run with paste_variant
    qc: bool = False               # PipelineSettings.qc (the synthetic-sample quality filter)
    factor: str = ""               # what this strategy changes against LN-DDPM 10× (the factor table), "" for none
    extra: tuple[tuple[str, Any], ...] = ()   # further PipelineSettings changes (the factor's)
    synthetic: str = "synthetic"   # which shared synthetic set it trains on (`synthetic_it150`: the round-1 model)

    def settings_changes(self) -> dict[str, Any]:
        # qc always explicit: the pipeline's default (on) must not filter the strategies compared without it
        return {"strategies": (self.pipeline_strategy,), "synt_per_case": self.synt_per_case,
                "paste_variant": self.paste, "qc": self.qc, **dict(self.extra)}


STRATEGIES = (
    Strategy("real", "Real", "real", "real"),
    Strategy("copypaste", "Real + copy-paste 10×", "copypaste", "real+copypaste", 10),   # as many cases as LN-DDPM 10×
    Strategy("ddpm10", "Real + LN-DDPM 10×", "ddpm10", "real+synt", 10),
    Strategy("inct10", "Real + LN-DDPM in-CT 10×", "inct10", "real+inct", 10),
    # One factor at a time against LN-DDPM 10× (shared plan, 50 % real draws, gated generator, QC off):
    Strategy("ddpm10_ownplan", "LN-DDPM 10×, its own nnU-Net plan", "ddpm10_ownplan", "real+synt", 10,
             factor="plan made from its own (mostly synthetic) cases", extra=(("nnunet_shared_plan", False),)),
    Strategy("ddpm10_uniform", "LN-DDPM 10×, uniform case draws", "ddpm10_uniform", "real+synt", 10,
             factor="nnU-Net's uniform case draws (9 % real) instead of 50 %", extra=(("nnunet_real_share", None),)),
    Strategy("ddpm10_it150", "LN-DDPM 10×, 150-iteration generator", "ddpm10_it150", "real+synt", 10,
             factor="the generator of round 1 (150 iterations) instead of the gated one", synthetic="synthetic_it150"),
    Strategy("ddpm10_qc", "LN-DDPM 10×, QC on", "ddpm10_qc", "real+synt", 10, qc=True,
             factor="quality control on"),
    Strategy("ddpm10_pretrain", "LN-DDPM 10× pretraining, Real fine-tuning", "ddpm10_pretrain", "synt>real", 10,
             factor="pretrain on the synthetic cases, then fine-tune on the real ones (half the epochs each) "
                    "instead of one mixed training"),
    Strategy("real_rerun", "Real, another nnU-Net seed", "real_rerun", "real",
             extra=(("nnunet_seed_offset", 1),)),   # the Real-vs-Real spread (synthesis_sections.spread_sentence)
    Strategy("ddpm5", "Real + LN-DDPM 5×", "ddpm5", "real+synt", 5),
    Strategy("ddpm10_pasted", "Real + LN-DDPM 10× pasted", "ddpm10", "real+synt", 10, paste=True),
    Strategy("synt", "Synt only (LN-DDPM 10×)", "synt", "synt", 10),
)
BY_KEY = {s.key: s for s in STRATEGIES}
# The question the benchmark answers (does LN-DDPM beat Real and the copy-paste baseline): these run on every
# seed; the factors on the first `secondary_seeds` seeds of a full run.
PRIMARY = ("real", "copypaste", "ddpm10", "inct10")
FACTORS = tuple(s.key for s in STRATEGIES if s.factor)
LN_DDPM_KEY = "ddpm10"   # the row the factors change one thing of
MAX_MULTIPLE = max(s.synt_per_case for s in STRATEGIES)   # synthetic cases sampled per real case, shared by all


def runs_on_seed(members: Sequence[Strategy], seed_index: int, secondary_seeds: int | None) -> bool:
    """Whether a group runs on the seed at `seed_index` of the budget (None: every strategy on every seed)."""
    return secondary_seeds is None or seed_index < secondary_seeds or any(m.key in PRIMARY for m in members)


def planned_runs(b: Mapping[str, Any]) -> int:
    """nnU-Net trainings (one per strategy, regime and seed) of a budget, the secondary-seed limit applied."""
    limit = b.get("secondary_seeds")
    seeds = len(b["seeds"])
    per_regime = sum(seeds if limit is None or key in PRIMARY else min(limit, seeds) for key in b["strategies"])
    return len(b["regimes"]) * per_regime


def unsupported(strategy: Strategy, known_strategies: Sequence[str], settings_fields: Sequence[str]) -> str | None:
    """Why the pipeline cannot run this strategy yet (None when it can)."""
    if strategy.pipeline_strategy not in known_strategies:
        return (f"the pipeline has no strategy {strategy.pipeline_strategy!r} yet (it knows "
                f"{', '.join(known_strategies)})")
    missing = [k for k in strategy.settings_changes() if k not in settings_fields]
    if missing:
        return f"PipelineSettings has no {', '.join(missing)} setting yet"
    return None


def group_settings(strategies: Sequence[Strategy]) -> dict[str, Any]:
    """PipelineSettings changes of one group: its base strategy's, with paste_variant when a member is pasted."""
    base = next((s for s in strategies if not s.paste), strategies[0])   # the pasted row alone: its own settings
    return {**base.settings_changes(), "paste_variant": any(s.paste for s in strategies)}


def pick_row(strategy: Strategy, rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The report row of a strategy in its group's metrics.json: the only row, or (a group with the pasted
    variant) the row with or without `pasted` in its method."""
    if len(rows) == 1:
        return rows[0]
    matching = [r for r in rows if ("pasted" in str(r["method"]).lower()) == strategy.paste]
    return matching[0] if len(matching) == 1 else None


def mean_sd(values: Sequence[float]) -> tuple[float, float, int]:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if not v.size:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


def summarize(runs: Mapping[str, Mapping[int, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per strategy: mean ± sd over seeds of each reported metric, and the paired bootstrap vs Real.

    `runs[strategy][seed]` holds `summary` (report row) and `per_case` (test case → metrics). The
    bootstrap uses the seeds both Real and the strategy finished (hierarchical: seeds, then cases).
    """
    out: dict[str, dict[str, Any]] = {}
    real = runs.get(REAL_KEY, {})
    for key, by_seed in runs.items():
        if not by_seed:
            continue
        entry: dict[str, Any] = {"seeds": sorted(by_seed), "metrics": {}, "vs_real": {}}
        for metric in REPORTED:
            mean, sd, n = mean_sd([r["summary"].get(metric) for r in by_seed.values()])
            entry["metrics"][metric] = {"mean": mean, "sd": sd, "n_seeds": n}
        if key != REAL_KEY:
            entry["vs_real"] = paired_differences(real, by_seed)
        if key not in (REAL_KEY, COPY_PASTE_KEY) and runs.get(COPY_PASTE_KEY):
            entry["vs_copypaste"] = paired_differences(runs[COPY_PASTE_KEY], by_seed)
        out[key] = entry
    return out


def paired_differences(reference: Mapping[int, Mapping[str, Any]],
                       other: Mapping[int, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per reported metric: other − reference, paired bootstrap over the seeds both finished and their test cases."""
    shared = sorted(set(reference) & set(other))
    out: dict[str, dict[str, Any]] = {}
    if not shared:
        return out
    for metric in REPORTED:
        try:
            result = metric_difference([reference[s]["per_case"] for s in shared],
                                       [other[s]["per_case"] for s in shared], metric)
        except ValueError:
            continue
        out[metric] = result.to_dict()
    return out


def _pm(stat: Mapping[str, Any]) -> str:
    return "n/a" if not np.isfinite(stat["mean"]) else f"{stat['mean']:.3f} ± {stat['sd']:.3f}"


def _ci(diff: Mapping[str, Any] | None) -> str:
    if not diff:
        return "n/a"
    mark = " **(sig.)**" if diff["significant"] else ""
    return f"{diff['estimate']:+.3f} [{diff['low']:+.3f}, {diff['high']:+.3f}]{mark}"


def results_table(summary: Mapping[str, Mapping[str, Any]]) -> str:
    """Strategy rows: metrics mean ± sd over seeds, then DSC and NodeRecall difference vs Real with the 95 % CI."""
    headers = ["Strategy", "seeds", *[f"{m} {'↓' if m == 'ASSD' else '↑'}" for m in REPORTED],
               "ΔDSC vs Real [95 % CI]", "ΔNodeRecall vs Real [95 % CI]", "test cases (nodes)"]
    rows = []
    for key, entry in summary.items():
        dsc = entry["vs_real"].get("DSC")
        basis = "n/a" if not dsc else f"{dsc['n_cases']} ({dsc['n_nodes']})"
        rows.append([BY_KEY[key].label if key in BY_KEY else key, len(entry["seeds"]),
                     *[_pm(entry["metrics"][m]) for m in REPORTED],
                     "—" if key == REAL_KEY else _ci(dsc), "—" if key == REAL_KEY else _ci(entry["vs_real"].get(
                         "NodeRecall")), basis])
    return markdown_table(headers, rows)


def copy_paste_table(summary: Mapping[str, Mapping[str, Any]]) -> str:
    """LN-DDPM strategies against the copy-paste baseline directly: ΔDSC and ΔNodeRecall with the 95 % CI."""
    rows = []
    for key, entry in summary.items():
        versus = entry.get("vs_copypaste") or {}
        if versus.get("DSC"):
            dsc = versus["DSC"]
            rows.append([BY_KEY[key].label if key in BY_KEY else key, dsc["n_seeds"], _ci(dsc),
                         _ci(versus.get("NodeRecall")), f"{dsc['n_cases']} ({dsc['n_nodes']})"])
    if not rows:
        return ""
    return markdown_table(["Strategy", "seeds", "ΔDSC vs copy-paste [95 % CI]", "ΔNodeRecall vs copy-paste [95 % CI]",
                           "test cases (nodes)"], rows)


def significance_sentences(summary: Mapping[str, Mapping[str, Any]], regime: str, against: str = "vs_real",
                           against_label: str = "Real") -> list[str]:
    """Plain words: which differences to Real (or, `against="vs_copypaste"`, copy-paste) exclude 0, per metric."""
    lines = []
    for key, entry in summary.items():
        versus = entry.get(against) or {}
        sig = [(m, d) for m, d in versus.items() if d["significant"]]
        label = BY_KEY[key].label if key in BY_KEY else key
        if key == REAL_KEY or not versus:
            continue
        if not sig:
            lines.append(f"{regime}: {label} vs {against_label}: no metric differs significantly "
                         "(every 95 % CI includes 0).")
        else:
            parts = [f"{m} {d['estimate']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] "
                     f"({'better' if (d['estimate'] < 0) == (m == 'ASSD') else 'worse'})" for m, d in sig]
            few = min(d["n_cases"] for _, d in sig) < FEW_CASES
            lines.append(f"{regime}: {label} vs {against_label}: significant for {'; '.join(parts)}"
                         + (f" (fewer than {FEW_CASES} test cases: the interval is too narrow to trust, a hint only)."
                            if few else "."))
    return lines


def estimate_full_run(costs: Mapping[str, float], plan: Mapping[str, int]) -> dict[str, float]:
    """Seconds of a run from per-unit costs: LN-DDPM iterations, samples, nnU-Net iterations and predictions.

    `costs`: s per LN-DDPM iteration, per synthetic sample, per nnU-Net training iteration (validation
    included), per nnU-Net run overhead (export + planning + evaluation) and per test-case prediction.
    `plan`: how many of each the run needs.
    """
    parts = {
        "ln_ddpm": costs["ddpm_s_per_iteration"] * plan["ddpm_iterations"],
        "sampling": costs["sampling_s_per_sample"] * plan["samples"],
        "nnunet_training": costs["nnunet_s_per_iteration"] * plan["nnunet_iterations"],
        "nnunet_overhead": costs["nnunet_run_overhead_s"] * plan["nnunet_runs"],
        "prediction": costs["predict_s_per_case"] * plan["predictions"],
    }
    parts["total"] = sum(parts.values())
    return {k: round(v, 1) for k, v in parts.items()}


def replace_settings(settings: Any, changes: Mapping[str, Any]) -> Any:
    """`dataclasses.replace` that names the setting PipelineSettings lacks instead of a bare TypeError."""
    fields = {f.name for f in dataclasses.fields(settings)}
    unknown = sorted(set(changes) - fields)
    if unknown:
        raise KeyError(f"PipelineSettings has no {', '.join(unknown)}")
    return dataclasses.replace(settings, **changes)
