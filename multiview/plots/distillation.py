"""Distillation over time: do the students' losing views take off, and does the error follow?

Every distilled student stage (``kd``, ``kd_onehot``, ``self_kd``) records, every
``protocol.kd_log_every`` steps, in ``<stage>.history``: ``flow_time`` (T, S), ``both_fraction``
(T, S: the fraction of classes whose two views are learned), ``losing_view.progress`` (T, S, k:
1 − (Λ(0)/Λ(t))^(q−2) of the view with the smaller Λ(0), 0 at initialization, → 1 at take-off)
and ``test_error`` (T, S, 3: all, multi-view, single-view, on the first
``protocol.kd_eval_examples`` test examples). Time is the gradient-flow time t = Σ η.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from multiview import stages
from multiview.plots.style import GREY, OKABE_ITO, get, headline, mu_of, new_figure, num, pct, style

STUDENT_STAGES: dict[str, str] = {
    "kd": OKABE_ITO["blue"],
    "kd_onehot": OKABE_ITO["orange"],
    "self_kd": OKABE_ITO["bluish_green"],
}
BOUNDS: dict[str, float] = {"kd": 0.01, "self_kd": 0.26}
"""err/μ bounds of Theorems 3 and 4."""


def _stages_with_history(results: dict[str, Any]) -> list[str]:
    found = [name for name in STUDENT_STAGES if get(results, f"{name}.history.losing_view")]
    if not found:
        raise KeyError(
            "results have no distilled students with a history: run the kd, kd_onehot or self_kd "
            "stage (multiview simulate --only kd)"
        )
    return found


def _label(name: str) -> str:
    return stages.get(stages.SYNTHETIC, name).label


def _mean_over_students(values: np.ndarray) -> np.ndarray:
    """The mean over the last axis, NaN where every student's value is NaN (no warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, -1)


def _per_student(ax: Axes, flow: np.ndarray, values: np.ndarray, color: str, label: str) -> None:
    """Thin lines per student (columns of ``flow``/``values`` (T, S)), a thick line for their mean."""
    for s in range(flow.shape[1]):
        ax.plot(flow[:, s], values[:, s], color=color, lw=0.6, alpha=0.35)
    ax.plot(_mean_over_students(flow), _mean_over_students(values), color=color, lw=2.0, label=label)


def teacher_coverage(results: dict[str, Any], name: str) -> float:
    """The both-views fraction the theory lets a student reach: the ensemble's coverage for KD,
    the union of the student's own lottery winner and its teacher's view for self-KD (measured
    where the two lotteries differ), nothing for the one-hot control."""
    if name == "kd":
        return num(get(results, "ensemble.views.both_fraction", float("nan")))
    if name == "self_kd":
        v = get(results, "self_kd.views", {})
        teacher_views = get(results, "single.views.learned")
        own = v.get("own_lottery_winner")
        if teacher_views is None or own is None:
            return float("nan")
        teacher = np.asarray(teacher_views, dtype=bool)
        exactly_one = teacher.sum(-1) == 1
        differ = exactly_one & (teacher.argmax(-1) != np.asarray(own))
        return float(differ.mean())
    return float("nan")


def distillation_figure(results: dict[str, Any]) -> Figure:
    """Three panels against flow time: the fraction of classes whose both views a student knows
    (beside the coverage its teacher offers), the power-phase push the losing views still need,
    1 − progress = (Λ(0)/Λ(t))^(q−2) on a log scale (median and 10–90 % band over student × class;
    a view takes off near (σ_0/ϱ)^(q−2), dotted), and err/μ on the probe's test examples beside
    the bound."""
    names = _stages_with_history(results)
    mu = mu_of(results)
    with style():
        fig = new_figure(11.5, 3.6)
        ax_both, ax_prog, ax_err = fig.subplots(1, 3)
        for name in names:
            h = results[name]["history"]
            color = STUDENT_STAGES[name]
            flow = np.asarray(h["flow_time"], dtype=float)  # (T, S)
            flow = np.where(flow > 0, flow, np.nan)  # log axis: the first record is at t = 0
            _per_student(ax_both, flow, np.asarray(h["both_fraction"], dtype=float), color, _label(name))
            cover = teacher_coverage(results, name)
            if not np.isnan(cover):
                ax_both.axhline(cover, color=color, ls=":", lw=1.2)
            progress = np.asarray(h["losing_view"]["progress"], dtype=float)  # (T, S, k)
            remaining = np.clip(1 - progress, 1e-12, None).reshape(progress.shape[0], -1)
            mean_flow = _mean_over_students(flow)
            if np.isfinite(remaining).any():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    lo, med, hi = np.nanpercentile(remaining, [10, 50, 90], axis=1)
                ax_prog.fill_between(mean_flow, lo, hi, color=color, alpha=0.18, lw=0)
                ax_prog.plot(mean_flow, med, color=color, lw=2.0, label=_label(name))
            if "test_error" in h:
                errs = np.asarray(h["test_error"], dtype=float)[..., 0] / mu  # (T, S)
                _per_student(ax_err, flow, errs, color, _label(name))
                if name in BOUNDS:
                    ax_err.axhline(BOUNDS[name], color=color, ls="--", lw=1.0)
        single = get(results, "single.test_error.all")
        if single:
            ax_err.axhline(np.mean(single) / mu, color=GREY, ls=":", lw=1.2)
        ax_both.set_ylabel("classes with both views learned")
        ax_both.set_ylim(-0.02, 1.02)
        ax_prog.set_ylabel(r"losing view's push still to come $(\Lambda(0)/\Lambda(t))^{q-2}$")
        ax_prog.set_yscale("log")
        ax_prog.set_ylim(top=2.0)
        varrho = num(get(results, "config.model.varrho", float("nan")))
        q = num(get(results, "config.model.q", float("nan")))
        sigma0 = num(get(results, "config.model.sigma_0", float("nan")))
        if q > 2 and np.isfinite(varrho * sigma0):
            # a view takes off near Λ = ϱ: from a start of order σ_0 that is (σ_0/ϱ)^(q−2) to go
            takeoff = (sigma0 / varrho) ** (q - 2)
            ax_prog.axhline(takeoff, color=GREY, ls=":", lw=1.0)
            ax_prog.set_ylim(bottom=takeoff / 100)
        ax_err.set_ylabel(r"test error / $\mu$ (probe examples)")
        ax_err.set_yscale("symlog", linthresh=0.01)
        ax_err.set_ylim(bottom=0)
        for ax in (ax_both, ax_prog, ax_err):
            ax.set_xscale("log")
            ax.set_xlabel(r"flow time $t=\sum\eta$")
        handles = [Line2D([], [], color=STUDENT_STAGES[n], lw=2, label=_label(n)) for n in names]
        handles += [
            Line2D([], [], color="k", ls=":", lw=1.2, label="teacher's coverage / single models"),
            Line2D([], [], color="k", ls="--", lw=1.0, label="bound (Thm 3, Thm 4)"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
        last = {n: np.asarray(results[n]["history"]["both_fraction"][-1], dtype=float).mean() for n in names}
        headline(
            fig,
            "Students' second views against flow time: both views learned in "
            + ", ".join(f"{pct(v)} ({_label(n)})" for n, v in last.items()),
        )
    return fig
