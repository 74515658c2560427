"""The studies' statistics against direct computations and simulation: power, paired tests, curve bands."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from eval.studies.stats import (curve_band, half_width, items_for_half_width, mcnemar, min_detectable_difference,
                                paired_bootstrap, seeds_for_half_width)


def test_min_detectable_difference_has_its_power():
    """A true difference equal to the MDD is found by Welch's test in about 80% of simulated studies."""
    sd, n = 3.0, 5
    mdd = min_detectable_difference(sd, n, sd, n)
    rng = np.random.default_rng(0)
    trials = 4000
    a = rng.normal(mdd, sd, (trials, n))
    b = rng.normal(0.0, sd, (trials, n))
    found = (sps.ttest_ind(a, b, axis=1, equal_var=False).pvalue < 0.05).mean()
    assert 0.76 < found < 0.84
    assert min_detectable_difference(sd, 1, sd, 5) is None


def test_seeds_for_half_width_reaches_the_target_and_no_fewer_do():
    target = 25.3
    n = seeds_for_half_width(30.1, 19.0, target)
    assert half_width(30.1, n, 19.0, n) <= target < half_width(30.1, n - 1, 19.0, n - 1)
    assert seeds_for_half_width(30.0, 30.0, 1e-9, most=50) is None
    assert items_for_half_width(2.0, 100, 1.0) == 400 and items_for_half_width(0.5, 100, 1.0) == 100


def test_paired_bootstrap_cancels_item_difficulty():
    """Items of very different difficulty, arm a uniformly 1% worse per token: the paired interval excludes 0
    and holds the true difference, though an unpaired view would drown it in the spread between items."""
    rng = np.random.default_rng(1)
    counts = rng.integers(50, 200, 300)
    per_token = rng.uniform(2.0, 8.0, 300)
    loss_b = per_token * counts
    loss_a = loss_b * 1.01
    r = paired_bootstrap(loss_a.tolist(), loss_b.tolist(), counts.tolist(), resamples=1000)
    true = math.exp(loss_a.sum() / counts.sum()) - math.exp(loss_b.sum() / counts.sum())
    assert r["diff"] == pytest.approx(true)
    assert 0 < r["low"] <= r["diff"] <= r["high"]
    same = paired_bootstrap(loss_b.tolist(), loss_b.tolist(), counts.tolist(), resamples=200)
    assert same["diff"] == same["low"] == same["high"] == 0
    with pytest.raises(ValueError):
        paired_bootstrap([1.0], [1.0, 2.0], [1, 1])


def test_mcnemar_counts_disagreements_and_matches_the_binomial():
    a = [True] * 10 + [False] * 2 + [True] * 30 + [False] * 8
    b = [False] * 10 + [True] * 2 + [True] * 30 + [False] * 8
    r = mcnemar(a, b)
    assert (r["a_only"], r["b_only"], r["n"]) == (10, 2, 50)
    assert r["p"] == pytest.approx(sps.binomtest(10, 12, 0.5).pvalue) and r["p"] < 0.05
    assert r["diff"] == pytest.approx(8 / 50)
    assert mcnemar([True, False], [True, False])["p"] == 1.0


def test_curve_band_is_the_t_interval_at_each_shared_point():
    curves = [[(10, 5.0), (20, 4.0)], [(10, 6.0), (20, 4.5)], [(10, 7.0)]]
    band = curve_band(curves)
    assert [p[0] for p in band] == [10]  # 20 was reached by two seeds of three: left out
    x, mean, low, high = band[0]
    half = sps.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert (mean, low, high) == pytest.approx((6.0, 6.0 - half, 6.0 + half))
