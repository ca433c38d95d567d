"""Fixtures of the figure tests: the Agg backend, and synthetic results of the simulator."""

from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")

from plot_helpers import synthetic_results  # noqa: E402


@pytest.fixture()
def results() -> dict:
    return synthetic_results()
