"""The memorization figure: own against fresh noise by kind of example."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from plot_helpers import S

from multiview.plots import (
    memorization_figure,
)
from multiview.plots.style import OKABE_ITO


def test_memorization_own_against_fresh_noise(results):
    fig = memorization_figure(results)
    (ax,) = fig.axes
    mem = results["single"]["memorization"]
    own, fresh = ax.containers
    groups = ("multi_view", "single_dominant_learned", "single_dominant_unlearned")
    np.testing.assert_allclose([b.get_height() for b in own], [np.mean(mem[g]["own_noise"]) for g in groups])
    np.testing.assert_allclose(
        [b.get_height() for b in fresh], [np.mean(mem[g]["fresh_noise"]) for g in groups]
    )
    assert own.patches[0].get_facecolor()[:3] == pytest.approx(
        matplotlib.colors.to_rgb(OKABE_ITO["vermillion"])
    )
    assert r"\xi_p" in ax.get_ylabel()
    assert ax.get_yscale() == "log"
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[0].startswith("multi-view") and "80 examples" in ticks[0]


def test_memorization_with_a_missing_group(results):
    results["single"]["memorization"]["single_dominant_unlearned"] = {
        "own_noise": [None] * S,
        "fresh_noise": [None] * S,
        "count": [0] * S,
    }
    fig = memorization_figure(results)
    assert "no examples" in fig.axes[0].get_xticklabels()[2].get_text()
