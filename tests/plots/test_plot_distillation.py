"""The distillation figure: second views, losing-view progress and err/μ against flow time."""

from __future__ import annotations

import numpy as np
import pytest
from plot_helpers import S, only

from multiview.plots import distillation_figure
from multiview.plots.distillation import STUDENT_STAGES, teacher_coverage


def test_distillation_figure_draws_each_student_stage(results):
    fig = distillation_figure(results)
    ax_both, ax_prog, ax_err = fig.axes[:3]
    h = results["kd"]["history"]
    both = np.asarray(h["both_fraction"])
    # per student a thin line, then the mean: the KD stage comes first
    mean_line = ax_both.get_lines()[S]
    np.testing.assert_allclose(mean_line.get_ydata(), both.mean(1))
    assert mean_line.get_color() == STUDENT_STAGES["kd"]
    # the ensemble's coverage is drawn as the KD students' reference
    refs = [line for line in ax_both.get_lines() if line.get_linestyle() == ":"]
    assert refs and refs[0].get_ydata()[0] == pytest.approx(results["ensemble"]["views"]["both_fraction"])
    # err/μ with the bounds of Theorems 3 and 4
    mu = results["config"]["data"]["mu"]
    err_mean = ax_err.get_lines()[S]
    np.testing.assert_allclose(err_mean.get_ydata(), np.asarray(h["test_error"])[..., 0].mean(1) / mu)
    dashed = sorted(line.get_ydata()[0] for line in ax_err.get_lines() if line.get_linestyle() == "--")
    assert dashed == [0.01, 0.26]
    assert ax_prog.get_yscale() == "log"  # the push still to come, (Λ(0)/Λ(t))^(q−2)
    progress = np.asarray(h["losing_view"]["progress"])
    median = ax_prog.get_lines()[0].get_ydata()
    np.testing.assert_allclose(median, np.nanmedian(1 - progress.reshape(progress.shape[0], -1), 1))
    assert all(ax.get_xscale() == "log" for ax in (ax_both, ax_prog, ax_err))
    assert "both views learned in 90%" in fig.texts[0].get_text()


def test_self_kd_coverage_is_where_the_lotteries_differ(results):
    teacher = np.asarray(results["single"]["views"]["learned"], dtype=bool)
    own = np.asarray(results["self_kd"]["views"]["own_lottery_winner"])
    differ = (teacher.sum(-1) == 1) & (teacher.argmax(-1) != own)
    assert teacher_coverage(results, "self_kd") == pytest.approx(differ.mean())
    assert np.isnan(teacher_coverage(results, "kd_onehot"))


def test_distillation_figure_needs_a_student_history(results):
    with pytest.raises(KeyError, match="kd, kd_onehot or self_kd"):
        distillation_figure(only(results, "single", "ensemble"))
