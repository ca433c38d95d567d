"""Means and 95 % intervals of measured values, with missing values (None, NaN) left out.

Results hold per-model lists in which a rate over an empty group is NaN (``null`` in JSON); every
average in the project skips those. The intervals come from :mod:`scipy.stats`:

* over test examples, an interval of a binomial proportion (an error count out of n test
  examples): the Wilson score interval (``scipy.stats.binomtest(k, n).proportion_ci``,
  ``method="wilson"``), or Clopper–Pearson (``method="exact"``);
* over models (seeds) or master seeds, the Student-t interval mean ± t_{0.975, S−1}·sd/√S
  (``scipy.stats.t``), and a bootstrap of the mean (``scipy.stats.bootstrap``, BCa, a fixed
  random stream so that a figure is drawn the same way twice) where a figure wants one.

Before these came from scipy, the project computed them by hand with the normal quantile rounded to
1.96 and a normal interval over seeds; the Wilson intervals move by less than 10⁻⁵ and the seed
intervals widen by the factor t_{0.975, S−1}/1.96 (1.15 for S = 10, 1.21 for S = 8, 1.42 for S = 5).
This module imports no torch; scipy is imported when an interval is computed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

CONFIDENCE = 0.95
"""The level of every interval the project reports."""

PROPORTION_METHODS = ("wilson", "exact")
"""Intervals of a binomial proportion: Wilson score, or Clopper–Pearson (``exact``)."""


def present(xs: Iterable[Any] | None) -> list[float]:
    """The values of ``xs`` that are numbers (None and NaN left out)."""
    return [x for x in xs or () if x is not None and not math.isnan(x)]


def nanmean(xs: Iterable[Any] | None) -> float:
    """The mean of the present values of ``xs`` (NaN when there are none)."""
    vals = present(xs)
    return sum(vals) / len(vals) if vals else float("nan")


def mean_sd(xs: Iterable[Any] | None) -> tuple[float, float]:
    """Mean and sample standard deviation (n − 1) of the present values (sd NaN below two)."""
    vals = present(xs)
    if not vals:
        return float("nan"), float("nan")
    m = sum(vals) / len(vals)
    if len(vals) < 2:
        return m, float("nan")
    return m, math.sqrt(sum((x - m) ** 2 for x in vals) / (len(vals) - 1))


def seed_interval(xs: Iterable[Any] | None, confidence: float = CONFIDENCE) -> list[float] | None:
    """The Student-t interval of the mean of the S present values: mean ± t_{(1+c)/2, S−1}·sd/√S
    (None below two values; [mean, mean] when they are all equal)."""
    vals = present(xs)
    if len(vals) < 2:
        return None
    m, sd = mean_sd(vals)
    if sd == 0:
        return [m, m]
    from scipy import stats

    low, high = stats.t.interval(confidence, len(vals) - 1, loc=m, scale=sd / math.sqrt(len(vals)))
    return [float(low), float(high)]


def bootstrap_interval(
    xs: Iterable[Any] | None,
    confidence: float = CONFIDENCE,
    resamples: int = 9999,
    seed: int = 0,
) -> list[float] | None:
    """A BCa bootstrap interval of the mean of the present values (``resamples`` resamples drawn
    from the random stream ``seed``); None below two values, [mean, mean] when they are all equal."""
    vals = present(xs)
    if len(vals) < 2:
        return None
    if min(vals) == max(vals):
        return [vals[0], vals[0]]
    import numpy as np
    from scipy import stats

    res = stats.bootstrap(
        (np.asarray(vals, dtype=float),),
        np.mean,
        confidence_level=confidence,
        n_resamples=resamples,
        method="BCa",
        rng=np.random.default_rng(seed),
    )
    return [float(res.confidence_interval.low), float(res.confidence_interval.high)]


def proportion_interval(
    successes: int, n: int, method: str = "wilson", confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """An interval of the binomial proportion successes/n: ``wilson`` (score) or ``exact``
    (Clopper–Pearson), from ``scipy.stats.binomtest``; (NaN, NaN) for n = 0."""
    if method not in PROPORTION_METHODS:
        raise ValueError(f"unknown interval method {method!r}; use {' or '.join(PROPORTION_METHODS)}")
    if n == 0:
        return (float("nan"), float("nan"))
    from scipy import stats

    ci = stats.binomtest(int(successes), int(n)).proportion_ci(confidence, method=method)
    return (float(ci.low), float(ci.high))


def wilson_interval(errors: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of an error rate errors/n (NaN for n = 0)."""
    return proportion_interval(errors, n, "wilson", confidence)
