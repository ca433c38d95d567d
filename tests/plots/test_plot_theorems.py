"""Theorem figures: each check beside its bound, learned against fixed features."""

from __future__ import annotations

import numpy as np
import pytest
from plot_helpers import only

from multiview.plots import (
    fixed_features_figure,
    theorems_figure,
)


def test_theorems_figure_shows_every_bound(results):
    fig = theorems_figure(results)
    ax_err, ax_mech = fig.axes
    errs = [b for b in results["bounds"] if b["measured_over_mu"] is not None]
    labels = [t.get_text() for t in ax_err.get_yticklabels()]
    assert len(labels) == len(errs)
    assert labels[-1] == "single model (Thm 1)"
    assert {"ensemble (Thm 2)", "KD from the ensemble (Thm 3)", "self-distillation (Thm 4)"} <= set(labels)
    points = [c for c in ax_err.collections if c.get_gid() == "measured"]
    assert sorted(float(p.get_offsets()[0][0]) for p in points) == pytest.approx(
        sorted(b["measured_over_mu"] for b in errs)
    )
    assert "units of μ" in ax_err.get_xlabel()
    assert len(ax_mech.get_yticklabels()) == 3
    n_judged = sum(b["passed"] is not None for b in results["bounds"])
    assert f"of {n_judged} theorem checks pass" in fig.get_suptitle()


def test_theorems_figure_with_single_stageonly(results):
    r = only(results, "single")
    r["bounds"] = [b for b in r["bounds"] if b["name"] in ("single_model", "one_view_per_class")]
    fig = theorems_figure(r)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["single model (Thm 1)"]


def test_fixed_features_figure(results):
    fig = fixed_features_figure(results)
    (ax,) = fig.axes
    ticks = [t.get_text().split("\n") for t in ax.get_xticklabels()]
    assert [t[0] for t in ticks] == ["feature learning (CNN)", "random features"]
    assert ax.get_ylabel() == "test error / μ"
    single = ax.containers[0]
    mu = results["config"]["data"]["mu"]
    assert single[0].get_height() == pytest.approx(np.mean(results["single"]["test_error"]["all"]) / mu)
    err = {
        k: np.mean(results["random_features"][k]["test_error"]["all"]) for k in ("single", "ensemble", "kd")
    }
    kd_share = (err["single"] - err["kd"]) / (err["single"] - err["ensemble"])
    assert ticks[1][1].startswith("kept: training avg. ") and ticks[1][1].endswith(f"KD {kd_share:.0%}")
    assert "ensemble's gain" in fig.get_suptitle()


def test_fixed_features_figure_needs_a_fixed_feature_stage(results):
    del results["random_features"]
    with pytest.raises(KeyError, match="random_features"):
        fixed_features_figure(results)


def test_seed_spread_shows_models_master_seeds_and_their_intervals(results):
    import pandas as pd

    from multiview.plots import error_bars_figure, seed_spread_figure
    from multiview.tidy import summarize, tidy_frame

    one = tidy_frame(results)
    two = pd.concat([one, one.assign(seed=one.seed + 1, error_over_mu=one.error_over_mu * 2)])
    fig = seed_spread_figure(two)
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-1] == "single models" and "ensemble" in labels
    diamonds = [c for c in ax.collections if c.get_offsets().shape == (1, 2) and c.get_paths()]
    xs = sorted(round(float(c.get_offsets()[0][0]), 9) for c in diamonds)
    singles = one[(one.learner == "cnn") & (one.method == "single") & (one.stratum == "all")].error_over_mu
    m = float(singles.mean())
    assert round(m, 9) in xs and round(2 * m, 9) in xs and round(1.5 * m, 9) in xs  # seeds 0, 1, their mean
    summary = summarize(two[(two.learner == "cnn") & (two.stratum == "all")], by=["method"]).set_index(
        "method"
    )
    low, high = summary.loc["single", ["low", "high"]]
    lines = [tuple(line.get_xdata()) for line in ax.lines]
    assert any(a == pytest.approx(low) and b == pytest.approx(high) for a, b in lines)  # over master seeds
    assert "2 master seeds" in fig.get_suptitle()

    bars = error_bars_figure(summary.reset_index().assign(x=1.0), x="x")
    assert len(bars.axes[0].containers) == len(summary)
