"""Dynamics figures: Λ(t) of winner and loser, the initial margin against the view that won."""

from __future__ import annotations

import numpy as np
import pytest
from plot_helpers import K_CLASSES, S

from multiview.plots import (
    initial_margin_figure,
    lambda_trajectories_figure,
)
from multiview.plots.style import OKABE_ITO


def test_lambda_trajectories_winner_against_loser(results):
    fig = lambda_trajectories_figure(results, seeds=[0, 2], classes=[1, 2])
    assert len(fig.axes) == 4
    lam = np.asarray(results["single"]["history"]["Lambda"])
    learned = np.asarray(results["single"]["views"]["learned"])
    ax = fig.axes[1]  # seed 0, class 2 (index 1... column 1 = class index 2)
    v1, v2, thr = ax.get_lines()
    np.testing.assert_allclose(v1.get_ydata(), lam[:, 0, 2, 0])
    np.testing.assert_allclose(v2.get_ydata(), lam[:, 0, 2, 1])
    np.testing.assert_allclose(v1.get_xdata(), results["single"]["history"]["step"])
    won = int(learned[0, 2].argmax())
    assert [v1, v2][won].get_linestyle() == "-" and [v1, v2][1 - won].get_linestyle() == "--"
    assert v1.get_color() == OKABE_ITO["blue"] and v2.get_color() == OKABE_ITO["orange"]
    assert thr.get_ydata()[0] == pytest.approx(0.1)
    assert fig.axes[0].get_ylabel() == r"$\Lambda_{i,\ell}(t)$"
    assert fig.axes[-1].get_xlabel() == "gradient step $t$"
    assert ax.get_yscale() == "symlog"
    assert f"$v_{{3,{won + 1}}}$ wins" in ax.get_title(loc="left")


def test_lambda_trajectories_defaults_and_flow_time(results):
    fig = lambda_trajectories_figure(results, time="flow_time")
    assert len(fig.axes) == 3 * 3  # first 3 seeds × all 3 classes
    assert "flow time" in fig.axes[-1].get_xlabel()


def test_initial_margin_against_the_view_that_won(results):
    fig = initial_margin_figure(results)
    ax_pts, ax_bins = fig.axes
    n_points = sum(len(c.get_offsets()) for c in ax_pts.collections)
    assert n_points == S * K_CLASSES - 1  # the pair with Λ(0) < 0 is left out
    assert "1 pairs" in ax_pts.get_title(loc="left")
    assert ax_pts.get_xscale() == "log"
    assert r"\Lambda_{i,1}(0)" in ax_pts.get_xlabel() and r"\Lambda_{i,2}(0)" in ax_pts.get_xlabel()
    heights = [p.get_height() for p in ax_bins.patches]
    np.testing.assert_allclose(heights, [0.5, 0.0, 1.0])
    assert [t.get_text() for t in ax_bins.get_xticklabels()] == ["[1, 1.5)", "[1.5, 2)", "[2, ∞)"]
    assert "75%" in fig.get_suptitle()
