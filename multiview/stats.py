"""Means and 95 % intervals of measured values, with missing values (None, NaN) left out.

Results hold per-model lists in which a rate over an empty group is NaN (``null`` in JSON); every
average in the project skips those. The intervals are the normal-approximation ones the theorem
checks report (:mod:`multiview.bounds`): over test examples the Wilson score interval of an error
count, over models (seeds) mean ± z·sd/√S, both with z = 1.96. This module imports no torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

Z95 = 1.96
"""The two-sided 95 % normal quantile, rounded as the reported intervals have always used it."""


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


def seed_interval(xs: Iterable[Any] | None, z: float = Z95) -> list[float] | None:
    """mean ± z·sd/√S over the S present values (None below two values)."""
    vals = present(xs)
    if len(vals) < 2:
        return None
    m, sd = mean_sd(vals)
    half = z * sd / math.sqrt(len(vals))
    return [m - half, m + half]


def wilson_interval(errors: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion errors/n (NaN for n = 0)."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = errors / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
