"""Learned-view figures: the views each seed learned, the views seeds share, coverage, students."""

from __future__ import annotations

import numpy as np
import pytest
from plot_helpers import K_CLASSES, S, only

from multiview.plots import (
    coverage_figure,
    learned_views_figure,
    shared_views_figure,
    students_figure,
    views_summary_figure,
)
from multiview.plots.views import BOTH, GAINED, NEITHER, TEACHER_ONLY, learned_matrix, student_codes


def test_learned_views_heatmap_shows_the_learned_matrix(results):
    fig = learned_views_figure(results)
    (ax,) = fig.axes
    data = np.asarray(ax.images[0].get_array())
    expected = np.asarray(results["single"]["views"]["learned"], dtype=float).reshape(S, 2 * K_CLASSES)
    np.testing.assert_array_equal(data, expected)
    assert ax.get_ylabel() == "seed"
    assert "class $i$" in ax.get_xlabel() and "$v_{i,1}$" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3"]
    assert "exactly one" in ax.get_title(loc="left")
    assert ax.images[0].get_cmap().name == "cividis"


def test_learned_matrix_orders_columns_class_major():
    m = learned_matrix([[[True, False], [False, True]]])
    np.testing.assert_array_equal(m, [[1, 0, 0, 1]])


@pytest.mark.parametrize("stage", ["kd", "self_kd"])
def test_learned_views_heatmap_for_students(results, stage):
    fig = learned_views_figure(results, stage)
    np.testing.assert_array_equal(
        fig.axes[0].images[0].get_array(), learned_matrix(results[stage]["views"]["learned"])
    )


@pytest.mark.parametrize("measure", ["same_views", "jaccard"])
def test_pairwise_overlap_is_the_seed_by_seed_matrix(results, measure):
    fig = shared_views_figure(results, measure)
    assert len(fig.axes) == 2  # heatmap and colour bar
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), results["single"]["views"]["overlap"][measure])
    assert ax.get_xlabel() == "seed $b$" and ax.get_ylabel() == "seed $a$"
    assert len(ax.texts) == S * S
    assert "on average" in ax.get_title(loc="left")


def test_coverage_against_ensemble_size_beside_the_prediction(results):
    fig = coverage_figure(results)
    ax_cov, ax_err = fig.axes
    K = np.arange(1, S + 1)
    assert ax_cov.get_xlabel() == "ensemble size $K$" == ax_err.get_xlabel()
    measured, predicted = ax_cov.get_lines()
    np.testing.assert_allclose(measured.get_ydata(), 2.0 ** (1 - K))
    np.testing.assert_allclose(predicted.get_ydata(), 2.0 ** (1 - K))
    labels = [line.get_label() for line in ax_err.get_lines()]
    assert labels == ["ensemble of single models", "ensemble of KD students", "fair coins: $2^{-K}$"]
    np.testing.assert_allclose(ax_err.get_lines()[2].get_ydata(), 2.0**-K)
    assert "covers both views" in fig.get_suptitle()


def test_student_codes():
    student = [[[True, True], [False, False]]]
    teacher = [[[True, False], [True, False]]]
    np.testing.assert_array_equal(student_codes(student, teacher), [[BOTH, GAINED, TEACHER_ONLY, NEITHER]])


def test_students_against_their_teachers(results):
    fig = students_figure(results)
    ax_kd, ax_self = fig.axes
    single = np.asarray(results["single"]["views"]["learned"], dtype=bool)
    kd = np.asarray(results["kd"]["views"]["learned"], dtype=bool)
    teacher = np.broadcast_to(single.any(0), kd.shape)
    np.testing.assert_array_equal(ax_kd.images[0].get_array(), (teacher + 2 * kd).reshape(S, -1))
    own = np.asarray(results["self_kd"]["views"]["learned"], dtype=bool)
    np.testing.assert_array_equal(ax_self.images[0].get_array(), (single + 2 * own).reshape(S, -1))
    assert ax_kd.get_ylabel() == "student"
    assert "Knowledge distillation" in ax_kd.get_title(loc="left")
    assert "Self-distillation" in ax_self.get_title(loc="left")
    # every gained cell carries a "+" so the picture reads without colour
    gained = int(((2 * own + single).reshape(S, -1) == GAINED).sum())
    assert sum(t.get_text() == "+" for t in ax_self.texts) == gained > 0
    assert len(fig.legends[0].get_texts()) == 4


def test_students_figure_with_only_kd(results):
    fig = students_figure(only(results, "single", "kd"))
    assert len(fig.axes) == 1


def test_views_summary(results):
    fig = views_summary_figure(results)
    assert len(fig.axes) == 3
    fig = views_summary_figure(only(results, "single"))
    assert len(fig.axes) == 1
