"""Paired bootstrap of a metric difference: known answers for shifts, identical inputs, noise and seeds."""

from __future__ import annotations

import numpy as np
import pytest

from LNSynthLib.metrics.bootstrap import node_recall_difference, paired_bootstrap


def test_identical_inputs_give_exactly_zero() -> None:
    a = np.random.default_rng(0).uniform(0.3, 0.9, 12)
    result = paired_bootstrap(a, a.copy())
    assert (result.estimate, result.low, result.high) == (0.0, 0.0, 0.0)
    assert not result.significant and result.n_cases == 12 and result.n_seeds == 1


def test_a_constant_shift_gives_an_interval_at_the_shift() -> None:
    a = np.random.default_rng(1).uniform(0.3, 0.9, 10)
    result = paired_bootstrap(a, a + 0.05)
    assert result.estimate == pytest.approx(0.05)
    assert result.low == pytest.approx(0.05) and result.high == pytest.approx(0.05)
    assert result.significant


def test_noisy_shift_covers_the_shift_and_widens_with_noise() -> None:
    rng = np.random.default_rng(2)
    a = rng.uniform(0.4, 0.8, 40)
    noise = rng.normal(0, 1, 40)
    quiet = paired_bootstrap(a, a + 0.1 + 0.01 * noise)
    loud = paired_bootstrap(a, a + 0.1 + 0.2 * noise)
    assert quiet.low < 0.1 < quiet.high and quiet.significant
    assert loud.half_width > 5 * quiet.half_width
    # Normal-theory check of the width: the 95 % interval of a mean is about ±1.96 sd / sqrt(n).
    d = 0.2 * noise
    assert loud.half_width == pytest.approx(1.96 * d.std() / np.sqrt(40), rel=0.15)


def test_no_difference_with_noise_is_not_significant() -> None:
    rng = np.random.default_rng(3)
    a = rng.uniform(0.4, 0.8, 30)
    result = paired_bootstrap(a, a + rng.normal(0, 0.05, 30))
    assert result.low < 0 < result.high and not result.significant


def test_seeded_and_reproducible() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.uniform(size=15), rng.uniform(size=15)
    assert paired_bootstrap(a, b, seed=7) == paired_bootstrap(a, b, seed=7)
    assert paired_bootstrap(a, b, seed=7).low != paired_bootstrap(a, b, seed=8).low


def test_hierarchical_seeds_add_the_between_seed_spread() -> None:
    """Cases agree within each seed, seeds disagree: only resampling seeds can show that spread."""
    shifts = [0.0, 0.2, -0.1, 0.3, 0.1]
    a = {s: np.full(10, 0.5) for s in range(5)}
    b = {s: np.full(10, 0.5 + shift) for s, shift in enumerate(shifts)}
    result = paired_bootstrap(a, b)
    assert result.n_seeds == 5 and result.n_cases == 50
    assert result.estimate == pytest.approx(np.mean(shifts))
    assert result.low < 0.05 and result.high > 0.15            # a spread only the seed level gives
    assert result.low >= min(shifts) and result.high <= max(shifts)


def test_nan_cases_and_ragged_seeds() -> None:
    a = [[0.5, np.nan, 0.5], [0.4, 0.4]]
    b = [[0.6, 0.9, 0.6], [0.5, 0.5]]
    result = paired_bootstrap(a, b)
    assert result.n_cases == 4 and result.n_seeds == 2
    assert result.estimate == pytest.approx(0.1) and result.low == pytest.approx(0.1)


def test_pooled_node_recall_weights_cases_by_their_nodes() -> None:
    nodes = np.array([1, 9])
    result = node_recall_difference([0, 0], [1, 0], nodes)
    assert result.estimate == pytest.approx(1 / 10)            # pooled: one more node of ten
    assert result.n_nodes == 10 and result.n_cases == 2
    assert result.low == pytest.approx(0.0) and result.high == pytest.approx(1.0)   # resampling the two cases


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        paired_bootstrap([0.1, 0.2], [0.1])
    with pytest.raises(ValueError):
        paired_bootstrap([np.nan], [0.1])
