"""Paired bootstrap of a metric difference between two strategies on the same test cases.

Both strategies are scored on the same test cases (of one or several seeds), so the question
"is B better than A" is about the per-case differences d = B − A, not about two independent
means. The bootstrap resamples what would change in a new experiment: the seeds (with
replacement), then the test cases within each drawn seed (with replacement). The statistic of a
resample is the mean over its seeds of each seed's (weighted) mean difference; the 95 % interval
is the 2.5 and 97.5 percentiles of 10 000 resamples. "Significant" means the interval excludes 0.

Weights turn a per-case ratio into a pooled one: NodeRecall per case with weights = nodes per
case gives Σ(found_B − found_A) / Σ nodes, the pooled NodeRecall difference of paper 000.
Everything is vectorised numpy with a seeded generator, so the same inputs give the same interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

N_BOOT = 10_000
CONFIDENCE = 0.95
_CHUNK = 2_000   # resamples per vectorised block: bounds memory for many seeds × cases


@dataclass(frozen=True)
class PairedDifference:
    """Point estimate and bootstrap interval of mean(B − A), and what it rests on."""

    estimate: float
    low: float
    high: float
    n_cases: int            # test cases over all seeds (pairs with a value for both strategies)
    n_seeds: int
    n_nodes: int | None = None
    confidence: float = CONFIDENCE
    n_boot: int = N_BOOT

    @property
    def significant(self) -> bool:
        return bool(self.low > 0 or self.high < 0)

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "significant": self.significant, "half_width": self.half_width}


def _as_groups(values: Sequence[float] | Sequence[Sequence[float]] | Mapping[Any, Sequence[float]]) -> list[np.ndarray]:
    """One float array per seed: a mapping seed → cases, a list of per-seed lists, or one flat list (one seed)."""
    if isinstance(values, Mapping):
        groups = list(values.values())
    else:
        groups = list(values)
        if groups and np.ndim(groups[0]) == 0:
            groups = [groups]
    return [np.asarray(g, dtype=float).ravel() for g in groups]


def paired_bootstrap(a: Any, b: Any, *, weights: Any = None, n_boot: int = N_BOOT, confidence: float = CONFIDENCE,
                     seed: int = 0, n_nodes: int | None = None) -> PairedDifference:
    """Bootstrap interval of the mean of b − a over test cases (and seeds: resample seeds, then cases in each).

    `a`, `b` (and `weights`) are per-case values of the same cases in the same order: a flat
    sequence for one seed, or one sequence per seed (a list or a mapping seed → values). Cases
    where either value (or the weight) is NaN, or the weight is 0, are left out. A seed without
    any case left is dropped.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    ga, gb = _as_groups(a), _as_groups(b)
    gw = _as_groups(weights) if weights is not None else [np.ones_like(x) for x in ga]
    if not (len(ga) == len(gb) == len(gw)) or any(x.shape != y.shape or x.shape != w.shape
                                                 for x, y, w in zip(ga, gb, gw, strict=True)):
        raise ValueError("a, b and weights need the same seeds and the same cases per seed")
    diffs, wts = [], []
    for x, y, w in zip(ga, gb, gw, strict=True):
        keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(w) & (w > 0)
        if keep.any():
            diffs.append(y[keep] - x[keep])
            wts.append(w[keep])
    if not diffs:
        raise ValueError("no test case has a value for both strategies")
    n_seeds, max_cases = len(diffs), max(len(d) for d in diffs)
    counts = np.array([len(d) for d in diffs])
    # Padded (seed, case) tables; padding is never drawn because case indices stay below each seed's count.
    d_tab, w_tab = np.zeros((n_seeds, max_cases)), np.zeros((n_seeds, max_cases))
    for s, (d, w) in enumerate(zip(diffs, wts, strict=True)):
        d_tab[s, :len(d)], w_tab[s, :len(w)] = d, w
    per_seed = (d_tab * w_tab).sum(axis=1) / w_tab.sum(axis=1)
    estimate = float(per_seed.mean())
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)
    for start in range(0, n_boot, _CHUNK):
        n = min(_CHUNK, n_boot - start)
        seeds = rng.integers(0, n_seeds, size=(n, n_seeds)) if n_seeds > 1 else np.zeros((n, 1), dtype=int)
        cases = (rng.random((n, n_seeds, max_cases)) * counts[seeds][..., None]).astype(int)
        used = np.arange(max_cases)[None, None, :] < counts[seeds][..., None]   # a seed draws as many cases as it has
        d = d_tab[seeds[..., None], cases] * used
        w = w_tab[seeds[..., None], cases] * used
        stats[start:start + n] = ((d * w).sum(axis=2) / w.sum(axis=2)).mean(axis=1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(stats, [tail, 100.0 - tail])
    if all(np.ptp(d) == 0 for d in diffs) and np.ptp(per_seed) == 0:
        low = high = estimate   # every difference the same: every resample is that value (no rounding noise)
    return PairedDifference(estimate, float(low), float(high), int(counts.sum()), n_seeds, n_nodes, confidence, n_boot)


def node_recall_difference(found_a: Any, found_b: Any, nodes: Any, **kwargs: Any) -> PairedDifference:
    """Pooled NodeRecall difference (Σ found_B − Σ found_A) / Σ nodes, bootstrapped like `paired_bootstrap`."""
    ga, gb, gn = _as_groups(found_a), _as_groups(found_b), _as_groups(nodes)
    with np.errstate(invalid="ignore", divide="ignore"):
        ra = [np.where(n > 0, x / n, np.nan) for x, n in zip(ga, gn, strict=True)]
        rb = [np.where(n > 0, y / n, np.nan) for y, n in zip(gb, gn, strict=True)]
    total = int(sum(float(n[np.isfinite(n)].sum()) for n in gn))
    return paired_bootstrap(ra, rb, weights=gn, n_nodes=total, **kwargs)


__all__ = ["CONFIDENCE", "N_BOOT", "PairedDifference", "node_recall_difference", "paired_bootstrap"]
