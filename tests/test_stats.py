"""Means that skip missing values, and the reported 95 % intervals (held against scipy.stats)."""

from __future__ import annotations

import math

import pytest
import scipy.stats

from multiview.stats import Z95, mean_sd, nanmean, present, seed_interval, wilson_interval


def test_missing_values_are_left_out():
    assert present([1.0, None, float("nan"), 2]) == [1.0, 2]
    assert nanmean([1.0, None, float("nan"), 2.0]) == 1.5
    assert math.isnan(nanmean([None, float("nan")])) and math.isnan(nanmean(None))
    assert mean_sd([1.0, 3.0]) == (2.0, math.sqrt(2.0))
    assert math.isnan(mean_sd([1.0])[1])


def test_the_seed_interval_is_the_normal_one_over_models():
    xs = [0.1, 0.3, 0.2, None]
    low, high = seed_interval(xs)
    m, sd = 0.2, 0.1
    assert (low, high) == pytest.approx((m - Z95 * sd / math.sqrt(3), m + Z95 * sd / math.sqrt(3)))
    assert scipy.stats.norm.interval(0.95, m, sd / math.sqrt(3)) == pytest.approx((low, high), rel=1e-4)
    assert seed_interval([0.1]) is None


@pytest.mark.parametrize(("k", "n"), [(0, 100), (7, 100), (50, 100), (100, 100), (123, 20_000)])
def test_the_wilson_interval_is_scipys(k, n):
    ours = wilson_interval(k, n)
    theirs = scipy.stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    assert ours == pytest.approx((theirs.low, theirs.high), abs=1e-5)  # z = 1.96 against 1.95996…
    assert 0.0 <= ours[0] <= k / n <= ours[1] + 1e-12 and ours[1] <= 1.0


def test_no_examples_no_interval():
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
