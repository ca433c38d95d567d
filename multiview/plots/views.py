"""Learned views: which views each seed learned, which views seeds share, what ensembles and
students cover.

Classes and views are indexed from 0 in the results (view 0/1 = the paper's v_{i,1}, v_{i,2});
labels show the paper's 1-based names.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from multiview.plots.style import (
    GREY,
    HEATMAP_CMAP,
    OKABE_ITO,
    get,
    headline,
    new_figure,
    num,
    pct,
    require,
    style,
)

# Student-versus-teacher cell codes: teacher + 2·student.
NEITHER, TEACHER_ONLY, GAINED, BOTH = 0, 1, 2, 3
STUDENT_COLORS = ("#F2F2F2", OKABE_ITO["sky_blue"], OKABE_ITO["orange"], OKABE_ITO["blue"])
STUDENT_LABELS = ("neither", "teacher only (student missed it) −", "student only (gained) +", "both")


def learned_matrix(learned: Any) -> np.ndarray:
    """[S][k][2] booleans → (S, 2k) float matrix, columns ordered (class 0: v1, v2; class 1: ...)."""
    a = np.asarray(learned, dtype=float)
    return a.reshape(a.shape[0], -1)


def _class_axis(ax: Axes, k: int, label: bool = True) -> None:
    """Class ticks in the middle of each (v_{i,1}, v_{i,2}) pair, thin separators between classes."""
    ax.set_xticks(np.arange(k) * 2 + 0.5, [str(i + 1) for i in range(k)])
    ax.set_xticks(np.arange(2 * k), minor=True)
    ax.tick_params(axis="x", which="minor", length=2)
    ax.tick_params(axis="x", which="major", length=0)
    for i in range(1, k):
        ax.axvline(2 * i - 0.5, color="white", lw=1.5)
    if label:
        ax.set_xlabel(r"class $i$ (left cell $v_{i,1}$, right cell $v_{i,2}$)")


def _seed_axis(ax: Axes, S: int, name: str = "seed") -> None:
    step = max(1, S // 12)
    ax.set_yticks(range(0, S, step))
    ax.set_ylabel(name)


def draw_learned_views(ax: Axes, learned: Any, threshold: float | None = None) -> None:
    """The seeds × (class, view) learned-view matrix on ``ax`` (1 = learned)."""
    M = learned_matrix(learned)
    S, K2 = M.shape
    ax.imshow(M, cmap=HEATMAP_CMAP, vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    _class_axis(ax, K2 // 2)
    _seed_axis(ax, S)
    cmap = ax.images[0].get_cmap()
    what = "learned" if threshold is None else f"learned ($\\Lambda_{{i,\\ell}} \\geq {threshold:.3g}$)"
    ax.legend(
        handles=[Patch(color=cmap(1.0), label=what), Patch(color=cmap(0.0), label="not learned")],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
    )


def learned_views_figure(results: dict[str, Any], stage: str = "single") -> Figure:
    """Heatmap of which views each seed learned (``stage`` = single, kd or self_kd)."""
    views = require(results, f"{stage}.views", "the learned-view heatmap")
    learned = views["learned"]
    S, k = len(learned), len(learned[0])
    one, both, none = (num(views.get(f"{x}_fraction")) for x in ("exactly_one", "both", "none"))
    who = {"single": "Each seed", "kd": "Each KD student", "self_kd": "Each self-distilled student"}.get(
        stage, stage
    )
    with style():
        fig = new_figure(min(3.0 + 0.45 * 2 * k, 12.0), 1.4 + 0.28 * S)
        ax = fig.add_subplot()
        draw_learned_views(ax, learned, get(results, "single.views.threshold"))
        ax.set_title(
            f"{who} learns exactly one of the two views of a class in {pct(one)} of cases\n"
            f"(both: {pct(both)}, none: {pct(none)}; {S} seeds × {k} classes)",
            loc="left",
        )
    return fig


def draw_pair_matrix(ax: Axes, matrix: Any, annotate: bool | None = None) -> Any:
    """An S × S matrix between models (values in [0, 1]: shared views, Jaccard indices) as a
    heatmap; returns the image."""
    M = np.asarray(matrix, dtype=float)
    S = M.shape[0]
    im = ax.imshow(M, cmap=HEATMAP_CMAP, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xlabel("seed $b$")
    ax.set_ylabel("seed $a$")
    step = max(1, S // 12)
    ax.set_xticks(range(0, S, step))
    ax.set_yticks(range(0, S, step))
    ax.spines[:].set_visible(False)
    if annotate if annotate is not None else S <= 12:
        for a in range(S):
            for b in range(S):
                v = M[a, b]
                ax.text(
                    b,
                    a,
                    f"{v:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if v > 0.6 else "white",
                )
    return im


def shared_views_figure(results: dict[str, Any], measure: str = "same_views") -> Figure:
    """How much any two seeds agree: ``same_views`` (fraction of classes with the same learned
    views) or ``jaccard`` (|A ∩ B| / |A ∪ B| of the learned (class, view) sets)."""
    ov = require(results, "single.views.overlap", "the shared-views heatmap")
    M = ov[measure]
    mean = num(ov.get(f"mean_{measure}"))
    what = {
        "same_views": "fraction of classes where seeds $a$, $b$ learned the same views",
        "jaccard": "Jaccard overlap of learned (class, view) sets",
    }[measure]
    chance = {"same_views": "50%", "jaccard": "33%"}[measure]
    with style():
        S = len(M)
        size = min(2.6 + 0.35 * S, 8.0)
        fig = new_figure(size + 1.2, size)
        ax = fig.add_subplot()
        im = draw_pair_matrix(ax, M)
        fig.colorbar(im, ax=ax, shrink=0.8, label=what)
        headline = {
            "same_views": f"Two seeds learned the same views for {pct(mean)} of classes on average",
            "jaccard": f"Two seeds' learned (class, view) sets overlap by {pct(mean)} on average (Jaccard)",
        }[measure]
        ax.set_title(f"{headline}\n(independent fair coins, one view per class: {chance})", loc="left")
    return fig


def draw_coverage(ax_cov: Axes, ax_err: Axes, results: dict[str, Any]) -> None:
    """Uncovered classes and single-view error of ensembles against K, beside 2^{1−K} and 2^{−K}."""
    c = require(results, "ensemble.curve", "the coverage curve")
    K = np.asarray(c["K"], dtype=float)
    uncovered = 1.0 - np.asarray([num(x) for x in c["covered"]])
    ax_cov.plot(K, uncovered, "o-", color=OKABE_ITO["blue"], label="measured")
    ax_cov.plot(K, 2.0 ** (1 - K), "--", color=OKABE_ITO["black"], label="fair coins: $2^{1-K}$")
    ax_cov.set_xlabel("ensemble size $K$")
    ax_cov.set_ylabel("classes with a view no member learned")
    ax_cov.set_ylim(-0.03, 1.03)
    ax_cov.legend(frameon=False)
    ax_cov.set_title("Coverage of both views", loc="left")

    err = np.asarray([num(x) for x in c["single_view"]])
    ax_err.plot(K, err, "o-", color=OKABE_ITO["blue"], label="ensemble of single models")
    kd_curve = get(results, "ensemble_of_kd.curve")
    if kd_curve:
        ax_err.plot(
            np.asarray(kd_curve["K"], dtype=float),
            [num(x) for x in kd_curve["single_view"]],
            "s-",
            color=OKABE_ITO["orange"],
            label="ensemble of KD students",
        )
    ax_err.plot(
        K,
        np.asarray([num(x) for x in c["predicted_single_view"]]),
        "--",
        color=OKABE_ITO["black"],
        label="fair coins: $2^{-K}$",
    )
    ax_err.set_xlabel("ensemble size $K$")
    ax_err.set_ylabel("test error on single-view data")
    ax_err.set_ylim(bottom=-0.02 * max(1e-9, float(np.nanmax(np.append(err, 0.5)))))
    ax_err.legend(frameon=False)
    ax_err.set_title("Single-view error", loc="left")
    for ax in (ax_cov, ax_err):
        ax.set_xticks(K.astype(int) if len(K) <= 12 else ax.get_xticks())


def coverage_figure(results: dict[str, Any]) -> Figure:
    """Union coverage of the two views against ensemble size, beside its 2^{1−K} prediction."""
    c = require(results, "ensemble.curve", "the coverage curve")
    with style():
        fig = new_figure(8.0, 3.2)
        ax_cov, ax_err = fig.subplots(1, 2)
        draw_coverage(ax_cov, ax_err, results)
        Kmax = int(c["K"][-1])
        headline(
            fig,
            f"An ensemble of {Kmax} covers both views of {pct(num(c['covered'][-1]))} of classes; "
            f"its single-view error falls from {pct(num(c['single_view'][0]))} "
            f"to {pct(num(c['single_view'][-1]))}",
        )
    return fig


def student_codes(student: Any, teacher: Any) -> np.ndarray:
    """(S, 2k) codes teacher + 2·student of [S][k][2] student views against the teacher's views
    ([S][k][2] or [1][k][2], broadcast)."""
    s = np.asarray(student, dtype=bool)
    t = np.broadcast_to(np.asarray(teacher, dtype=bool), s.shape)
    return (t.astype(int) + 2 * s.astype(int)).reshape(s.shape[0], -1)


def teacher_views(results: dict[str, Any], stage: str) -> np.ndarray:
    """The views each ``stage`` student's teacher knows: the ensemble's union for ``kd``, its
    own single model for ``self_kd``."""
    single = np.asarray(require(results, "single.views.learned", "the teacher's views"), dtype=bool)
    return single.any(0, keepdims=True) if stage == "kd" else single


def draw_students(ax: Axes, results: dict[str, Any], stage: str) -> None:
    """Student against teacher views: a categorical heatmap, with + (gained) and − (missed) marks."""
    student = require(results, f"{stage}.views.learned", "the student heatmap")
    codes = student_codes(student, teacher_views(results, stage))
    S, K2 = codes.shape
    ax.imshow(
        codes,
        cmap=ListedColormap(STUDENT_COLORS),
        vmin=-0.5,
        vmax=3.5,
        aspect="auto",
        interpolation="nearest",
    )
    for (r, c), v in np.ndenumerate(codes):
        if v == GAINED:
            ax.text(c, r, "+", ha="center", va="center", fontsize=9, fontweight="bold")
        elif v == TEACHER_ONLY:
            ax.text(c, r, "−", ha="center", va="center", fontsize=9, fontweight="bold")
    _class_axis(ax, K2 // 2)
    _seed_axis(ax, S, "student")


def students_figure(results: dict[str, Any]) -> Figure:
    """KD and self-KD students next to their teachers: which views did each student gain?"""
    stages = [s for s in ("kd", "self_kd") if get(results, f"{s}.views.learned") is not None]
    if not stages:
        require(results, "kd.views.learned", "the student heatmaps")
    k = len(require(results, "single.views.learned", "the teacher's views")[0])
    S = max(len(results[s]["views"]["learned"]) for s in stages)
    with style():
        fig = new_figure(min(3.5 + 0.45 * 2 * k, 12.0), len(stages) * (1.3 + 0.28 * S) + 0.6)
        axes = fig.subplots(len(stages), 1, squeeze=False)[:, 0]
        for ax, stage in zip(axes, stages, strict=True):
            draw_students(ax, results, stage)
            v = results[stage]["views"]
            teacher = (
                "the ensemble of all single models" if stage == "kd" else "the single model of the same seed"
            )
            name = "Knowledge distillation" if stage == "kd" else "Self-distillation"
            ax.set_title(
                f"{name} (teacher: {teacher}): "
                f"both views learned in {pct(num(v.get('both_fraction')))} of classes;\n"
                f"the teacher's view that the student's own lottery did not pick was gained in "
                f"{pct(num(v.get('gained_fraction')))} of cases",
                loc="left",
                fontsize=9,
            )
        fig.legend(
            handles=[
                Patch(facecolor=c, edgecolor=GREY, label=lab)
                for c, lab in zip(STUDENT_COLORS[::-1], STUDENT_LABELS[::-1], strict=True)
            ],
            loc="outside lower center",
            ncols=4,
            frameon=False,
        )
        headline(fig, "Distilled students learn the views their teachers know")
    return fig


def views_summary_figure(results: dict[str, Any]) -> Figure:
    """One picture of the mechanism: the learned-view matrix and the ensemble's coverage."""
    learned = require(results, "single.views.learned", "the summary figure")
    views = results["single"]["views"]
    S, k = len(learned), len(learned[0])
    with style():
        fig = new_figure(11.0, 3.4)
        gs = fig.add_gridspec(1, 3, width_ratios=[1.6, 1, 1])
        ax_m = fig.add_subplot(gs[0])
        draw_learned_views(ax_m, learned)
        ax_m.get_legend().remove()
        ax_m.set_title("Learned views (yellow: $\\Lambda_{i,\\ell} \\geq$ threshold)", loc="left", fontsize=9)
        story = f"{S} seeds × {k} classes: a seed learns exactly one of the two views of a class in "
        story += pct(num(views.get("exactly_one_fraction")))
        curve = get(results, "ensemble.curve")
        if curve:
            ax_cov = fig.add_subplot(gs[1])
            ax_err = fig.add_subplot(gs[2])
            draw_coverage(ax_cov, ax_err, results)
            story += (
                f"; the ensemble of {int(curve['K'][-1])} covers both in {pct(num(curve['covered'][-1]))}"
            )
        headline(fig, story)
    return fig
