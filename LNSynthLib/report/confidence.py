"""How sure a comparison is: each strategy against Real, with a paired bootstrap CI and a plain sentence.

A report table of means invites "Real+Synt is worse" from 0.864 vs 0.836 on two test cases.
This module turns the per-case metrics of the same test cases into the paired difference
(strategy − Real) with its 95 % interval (`metrics/bootstrap.py`), the number of test cases,
nodes and seeds behind it, and one sentence saying what that can and cannot support. The
evaluation report and `python -m experiments synthesis` both use it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from LNSynthLib.metrics.bootstrap import PairedDifference, node_recall_difference, paired_bootstrap
from LNSynthLib.report.tables import markdown

CI_METRICS = ("DSC", "NodeRecall")    # the report's differences; the benchmark adds the rest of METRIC_NAMES
LOWER_IS_BETTER = frozenset({"ASSD"})
FEW_CASES = 10    # below this many test cases a bootstrap interval is itself unreliable (too narrow)
REAL = "Real"

PerCase = Mapping[str, Mapping[str, Any]]   # test case → its metrics (metrics.segmentation.segmentation_metrics)


def metric_difference(real: Sequence[PerCase], other: Sequence[PerCase], metric: str, *,
                      seed: int = 0) -> PairedDifference:
    """Bootstrap of `other − real` for one metric; one PerCase per seed, cases matched by name.

    NodeRecall is pooled over nodes (paper 000), the other metrics are case means.
    """
    if len(real) != len(other) or not real:
        raise ValueError("need the per-case metrics of the same seeds for both strategies")
    names = [sorted(set(r) & set(o)) for r, o in zip(real, other, strict=True)]
    nodes = [[float(r[c].get("nodes_total", 0)) for c in cases] for r, cases in zip(real, names, strict=True)]
    n_nodes = int(sum(sum(n) for n in nodes))
    if metric == "NodeRecall":
        found_a = [[float(r[c]["nodes_found"]) for c in cases] for r, cases in zip(real, names, strict=True)]
        found_b = [[float(o[c]["nodes_found"]) for c in cases] for o, cases in zip(other, names, strict=True)]
        return node_recall_difference(found_a, found_b, nodes, seed=seed)
    a = [[_value(r[c], metric) for c in cases] for r, cases in zip(real, names, strict=True)]
    b = [[_value(o[c], metric) for c in cases] for o, cases in zip(other, names, strict=True)]
    return paired_bootstrap(a, b, seed=seed, n_nodes=n_nodes)


def _value(metrics: Mapping[str, Any], metric: str) -> float:
    value = metrics.get(metric)
    return float("nan") if value is None else float(value)


def differences_vs_real(per_case: Mapping[str, Sequence[PerCase]], labels: Mapping[str, tuple[str, str]],
                        metrics: Sequence[str] = CI_METRICS) -> list[dict[str, Any]]:
    """One row per (strategy other than Real, metric): its difference to Real with the CI and counts.

    `per_case[key]` is one PerCase per seed; `labels[key]` its (strategy, method). Empty when no
    strategy is Real.
    """
    real_key = next((k for k, (strategy, _) in labels.items() if strategy == REAL), None)
    if real_key is None:
        return []
    rows = []
    for key, (strategy, method) in labels.items():
        if key == real_key:
            continue
        for metric in metrics:
            try:
                result = metric_difference(per_case[real_key], per_case[key], metric)
            except ValueError:   # no case with a value for both (e.g. Recall without any ground truth)
                continue
            rows.append({"strategy": strategy, "method": method, "metric": metric, **result.to_dict(),
                         "sentence": sentence(f"{_label(strategy, method)} − Real", metric, result)})
    return rows


def _label(strategy: str, method: str) -> str:
    return strategy if method in ("-", "") else f"{strategy} ({method})"


def sentence(label: str, metric: str, r: PairedDifference) -> str:
    """What one difference can and cannot support, in words."""
    basis = f"{r.n_cases} test case{'s' * (r.n_cases != 1)}"
    if r.n_nodes is not None:
        basis += f" ({r.n_nodes} node{'s' * (r.n_nodes != 1)})"
    basis += f", {r.n_seeds} seed{'s' * (r.n_seeds != 1)}"
    head = (f"{label}, {metric}: {r.estimate:+.3f} (95 % CI {r.low:+.3f} to {r.high:+.3f}; {basis})")
    if r.significant:
        better = (r.estimate < 0) if metric in LOWER_IS_BETTER else (r.estimate > 0)
        text = (f"{head}: the interval excludes 0, so on these test cases the strategy is "
                f"{'better' if better else 'worse'} than Real by this metric")
    elif r.high == r.low:
        text = f"{head}: every test case gave the same value, so this run shows no difference"
    else:
        text = (f"{head}: the interval spans ±{r.half_width:.2f} and includes 0, so this run cannot show a "
                f"difference (anything from {r.low:+.2f} to {r.high:+.2f} fits these cases)")
    if r.n_cases < FEW_CASES:
        text += (f". With fewer than {FEW_CASES} test cases the bootstrap interval is itself too narrow to "
                 "trust; treat any difference as a hint only")
    if r.n_seeds == 1:
        text += (". One seed: the spread between repeated trainings (LN-DDPM, nnU-Net) is not in this "
                 "interval (`python -m experiments synthesis` repeats over seeds)")
    return text + "."


def ci_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: strategy, metric, difference vs Real, 95 % CI, cases, nodes, seeds, significant."""
    headers = ["Strategy", "Method", "Metric", "Difference vs Real", "95 % CI", "test cases", "nodes", "seeds",
               "significant"]
    body = [[r["strategy"], r["method"], r["metric"], f"{r['estimate']:+.4f}",
             f"[{r['low']:+.4f}, {r['high']:+.4f}]", r["n_cases"],
             "n/a" if r.get("n_nodes") is None else r["n_nodes"], r["n_seeds"], "yes" if r["significant"] else "no"]
            for r in rows]
    return markdown(headers, body)


def best_strategy(rows: Sequence[Mapping[str, Any]], metric: str = "DSC") -> str | None:
    """One sentence naming the strategy with the largest `metric` difference to Real, with its CI; None without one.

    The pick is made on the same test cases that score it, so its interval is optimistic: the sentence says
    so and points to the benchmark, which ranks strategies over seeds and the Real-vs-Real spread.
    """
    candidates = [r for r in rows if r["metric"] == metric]
    if not candidates:
        return None
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    best = max(candidates, key=lambda r: sign * float(r["estimate"]))
    better = sign * float(best["estimate"]) > 0
    if not best["significant"]:
        verdict = "its interval includes 0, so this run does not show it helps"
    elif better:
        verdict = "its interval excludes 0: better than Real on these test cases"
    else:
        verdict = "its interval excludes 0 on the worse side: no strategy beat Real here"
    return (f"Best strategy here: {_label(best['strategy'], best['method'])}, {metric} {best['estimate']:+.3f} vs Real "
            f"(95 % CI {best['low']:+.3f} to {best['high']:+.3f}); {verdict}. Picked on the test cases that score "
            f"it, so the pick flatters it; `python -m experiments synthesis` ranks strategies over seeds against "
            f"the Real-vs-Real spread.")


def report_section(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The report's "How sure is this" section (markdown lines); empty without a Real row to compare to."""
    if not rows:
        return []
    return ["## How sure is this", "",
            "Each strategy against Real on the same test cases: the paired difference (strategy − Real) with a "
            "95 % bootstrap confidence interval (10 000 resamples of the test cases; NodeRecall pooled over "
            "nodes). A difference is significant when its interval excludes 0.", "",
            ci_table(rows), "", *[f"- {r['sentence']}" for r in rows], "",
            *([best, ""] if (best := best_strategy(rows)) else [])]


def summary_lines(metrics_json: str | Path) -> list[str]:
    """Lines for the terminal (`lnsynth evaluate`, `lnsynth demo`): one sentence per difference in metrics.json."""
    rows = json.loads(Path(metrics_json).read_text(encoding="utf-8")).get("differences_vs_real") or []
    if not rows:
        return ["no Real strategy in this evaluation: no difference to Real with a confidence interval"]
    best = best_strategy(rows)
    return ["Differences to Real (95 % bootstrap CI over the test cases):", *[f"  {r['sentence']}" for r in rows],
            *([best] if best else [])]


__all__ = ["CI_METRICS", "best_strategy", "ci_table", "differences_vs_real", "metric_difference", "report_section", "sentence",
           "summary_lines"]
