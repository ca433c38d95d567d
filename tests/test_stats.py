"""Means that skip missing values, and the reported 95 % intervals: against golden values stored once
(tests/golden/make_golden.py) and against the textbook formulas."""

from __future__ import annotations

import json
import math
from pathlib import Path
from statistics import NormalDist

import pytest

from multiview.stats import (
    bootstrap_interval,
    mean_sd,
    nanmean,
    present,
    proportion_interval,
    seed_interval,
    wilson_interval,
)

GOLDEN = json.loads((Path(__file__).parent / "golden" / "stats.json").read_text())
Z = NormalDist().inv_cdf(0.975)  # 1.959963984540054
T975 = {2: 4.303, 4: 2.776, 7: 2.365}
"""t_{0.975, df} as printed in the tables (four significant digits)."""


def test_missing_values_are_left_out():
    assert present([1.0, None, float("nan"), 2]) == [1.0, 2]
    assert nanmean([1.0, None, float("nan"), 2.0]) == 1.5
    assert math.isnan(nanmean([None, float("nan")])) and math.isnan(nanmean(None))
    assert mean_sd([1.0, 3.0]) == (2.0, math.sqrt(2.0))
    assert math.isnan(mean_sd([1.0])[1])


@pytest.mark.parametrize("case", GOLDEN["proportions"], ids=lambda c: f"{c['k']}of{c['n']}")
def test_proportion_intervals_match_the_golden_values(case):
    k, n = case["k"], case["n"]
    assert wilson_interval(k, n) == pytest.approx(tuple(case["wilson"]), abs=1e-12)
    assert proportion_interval(k, n, "exact") == pytest.approx(tuple(case["exact"]), abs=1e-12)


@pytest.mark.parametrize("case", GOLDEN["proportions"], ids=lambda c: f"{c['k']}of{c['n']}")
def test_the_wilson_interval_is_the_textbook_formula(case):
    k, n = case["k"], case["n"]
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    assert wilson_interval(k, n) == pytest.approx((centre - half, centre + half), abs=1e-12)
    # the interval reported before scipy, with z rounded to 1.96, is within 1e-5 of it
    z = 1.96
    old_half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    old_centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    assert wilson_interval(k, n)[1] == pytest.approx(min(1.0, old_centre + old_half), abs=1e-5)


def test_clopper_pearson_is_exact_at_the_ends():
    # k = 0: the upper end solves (1 − p)^n = 0.025; k = n: the lower end solves p^n = 0.025.
    assert proportion_interval(0, 20, "exact") == pytest.approx((0.0, 1 - 0.025 ** (1 / 20)))
    assert proportion_interval(20, 20, "exact") == pytest.approx((0.025 ** (1 / 20), 1.0))
    with pytest.raises(ValueError, match="unknown interval method 'normal'"):
        proportion_interval(1, 2, "normal")


@pytest.mark.parametrize("case", GOLDEN["seeds"], ids=lambda c: f"S={len(c['values'])}")
def test_seed_intervals_match_the_golden_values(case):
    assert seed_interval(case["values"]) == pytest.approx(case["t"], abs=1e-12)
    assert bootstrap_interval(case["values"]) == pytest.approx(case["bootstrap"], abs=1e-12)


@pytest.mark.parametrize("case", GOLDEN["seeds"], ids=lambda c: f"S={len(c['values'])}")
def test_the_seed_interval_is_students_t(case):
    xs = case["values"]
    S = len(xs)
    m, sd = mean_sd(xs)
    low, high = seed_interval(xs)
    assert (low + high) / 2 == pytest.approx(m, abs=1e-12)
    assert (high - low) / 2 == pytest.approx(T975[S - 1] * sd / math.sqrt(S), rel=2e-4)
    low, high = bootstrap_interval(xs)
    assert min(xs) <= low <= m <= high <= max(xs)


def test_degenerate_samples():
    assert seed_interval([0.1]) is None and bootstrap_interval([None, 0.2]) is None
    assert seed_interval([0.2, 0.2, None]) == [0.2, 0.2] == bootstrap_interval([0.2, 0.2])
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
