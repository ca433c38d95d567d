"""The theorem checks as a picture: each method's test error in units of μ, with its 95 % CI,
beside the paper's bound (``results["bounds"]``, see :mod:`multiview.bounds`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from multiview import stages
from multiview.plots.style import (
    OKABE_ITO,
    VERDICT_COLORS,
    get,
    headline,
    mu_of,
    new_figure,
    num,
    require,
    style,
)
from multiview.stats import nanmean

NAMES = {
    "single_model": "single model (Thm 1)",
    "ensemble": "ensemble (Thm 2)",
    "knowledge_distillation": "KD from the ensemble (Thm 3)",
    "self_distillation": "self-distillation (Thm 4)",
    "ensemble_of_kd": "ensemble of KD students",
    "training_average_no_gain": "training the average",
    "random_features_average_matches_ensemble": "random features: training the average",
    "random_features_kd_falls_short": "random features: KD",
    "ntk_average_matches_ensemble": "NTK: training the average",
    "ntk_kd_falls_short": "NTK: KD",
    "one_view_per_class": "exactly one view per class",
    "lottery_at_init": "learned view = lottery winner\n(classes in $M$)",
    "errors_explained": "single-view errors explained\nby an unlearned dominant view",
}
MECHANISMS = ("one_view_per_class", "lottery_at_init", "errors_explained")
MARKERS = {True: "o", False: "X", None: "D"}
VERDICT_TEXT = {True: "passed", False: "failed", None: "not judged"}
ALLOWED = OKABE_ITO["bluish_green"]


def error_entries(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The checks that hold a test error to a bound (those with ``measured_over_mu``)."""
    return [b for b in results.get("bounds", []) if b.get("measured_over_mu") is not None]


def mechanism_entries(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The checks on measured fractions (one view per class, lottery, explained errors)."""
    return [b for b in results.get("bounds", []) if b["name"] in MECHANISMS]


def _bound_text(b: dict[str, Any], mu: float) -> str:
    bound = b["bound"]
    if "half_gain_error" in bound:
        op = "≤" if bound.get("rule", "").startswith("err ≤") else ">"
        return f"err/μ {op} {num(bound['half_gain_error']) / mu:.2g} (half the ensemble's gain)"
    if "low" in bound and "high" in bound:
        return f"{num(bound['low']) / mu:.2g} ≤ err/μ ≤ {num(bound['high']) / mu:.2g}"
    if "high" in bound:
        return f"err/μ < {num(bound['high']) / mu:.2g}"
    return ""


def _allowed_interval(b: dict[str, Any], mu: float, xmax: float) -> tuple[float, float] | None:
    bound = b["bound"]
    if "half_gain_error" in bound:
        h = num(bound["half_gain_error"]) / mu
        return (0.0, h) if bound.get("rule", "").startswith("err ≤") else (h, xmax)
    lo = num(bound["low"]) / mu if "low" in bound else 0.0
    hi = num(bound["high"]) / mu if "high" in bound else xmax
    return lo, hi


def _ci(b: dict[str, Any], key: str, mu: float) -> tuple[float, float] | None:
    ci = get(b, f"ci95.{key}")
    if not ci:
        return None
    return max(0.0, num(ci[0]) / mu), num(ci[1]) / mu


def _verdict_marker(ax: Axes, x: float, y: float, passed: bool | None, **kwargs: Any) -> None:
    """The measured value at (x, y), in its verdict's marker and color (``kwargs`` go to scatter)."""
    ax.scatter(
        [x],
        [y],
        s=46,
        marker=MARKERS[passed],
        color=VERDICT_COLORS[passed],
        edgecolor="k",
        lw=0.6,
        zorder=3,
        **kwargs,
    )


def draw_errors(ax: Axes, entries: list[dict[str, Any]], mu: float) -> None:
    """One row per check: the allowed region (shaded), the measured err/μ and its CIs."""
    n = len(entries)
    values = [num(b["measured_over_mu"]) for b in entries]
    his = [c[1] for b in entries for c in (_ci(b, "binomial", mu), _ci(b, "seeds", mu)) if c]
    xmax = max([1.2, *[v for v in values if not math.isnan(v)], *his]) * 1.15
    for row, b in enumerate(entries):
        y = n - 1 - row
        lo, hi = _allowed_interval(b, mu, xmax)
        ax.fill_betweenx([y - 0.38, y + 0.38], lo, hi, color=ALLOWED, alpha=0.22, lw=0)
        for edge in (lo, hi):
            if 0 < edge < xmax:
                ax.plot([edge, edge], [y - 0.38, y + 0.38], color=ALLOWED, lw=1.5)
        seeds = _ci(b, "seeds", mu)
        binom = _ci(b, "binomial", mu)
        if binom:
            ax.plot(binom, [y, y], color="k", lw=1.0, solid_capstyle="butt")
        if seeds:
            ax.plot(seeds, [y, y], color="k", lw=3.5, alpha=0.45, solid_capstyle="butt")
        _verdict_marker(ax, values[row], y, b.get("passed"), gid="measured")
        ax.annotate(
            _bound_text(b, mu),
            (1.0, y),
            xycoords=("axes fraction", "data"),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    ax.set_yticks(range(n), [NAMES.get(b["name"], b["name"]) for b in reversed(entries)])
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_xscale("symlog", linthresh=0.01, linscale=0.6)
    ax.set_xlim(0, xmax)
    ticks = [t for t in (0, 0.01, 0.05, 0.1, 0.26, 0.5, 1, 2, 5, 10) if t <= xmax]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlabel("test error in units of μ (err / μ)")
    ax.grid(axis="x", color="#DDDDDD", lw=0.6)
    ax.set_axisbelow(True)


def draw_mechanisms(ax: Axes, entries: list[dict[str, Any]]) -> None:
    """One row per mechanism check: the measured fraction against its minimum."""
    n = len(entries)
    for row, b in enumerate(entries):
        y = n - 1 - row
        lo = num(b["bound"].get("low", 0.0))
        ax.fill_betweenx([y - 0.38, y + 0.38], lo, 1.0, color=ALLOWED, alpha=0.22, lw=0)
        ax.plot([lo, lo], [y - 0.38, y + 0.38], color=ALLOWED, lw=1.5)
        v = num(b["measured"])
        if not math.isnan(v):
            ax.barh(y, v, height=0.3, color="#BBBBBB")
            _verdict_marker(ax, v, y, b.get("passed"))
    ax.set_yticks(range(n), [NAMES.get(b["name"], b["name"]) for b in reversed(entries)])
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("fraction of (seed, class) pairs / of errors")
    ax.grid(axis="x", color="#DDDDDD", lw=0.6)
    ax.set_axisbelow(True)


def theorems_figure(results: dict[str, Any]) -> Figure:
    """Each method's err/μ with its 95 % CIs (thin: over test examples; thick: over seeds) beside
    the paper's bound (shaded: where the bound allows), and the mechanism checks."""
    mu = mu_of(results)
    require(results, "bounds", "the theorem figure")
    errs, mechs = error_entries(results), mechanism_entries(results)
    judged = [b for b in results["bounds"] if b.get("passed") is not None]
    n_pass = sum(1 for b in judged if b["passed"])
    with style():
        rows = max(len(errs), 1) + (len(mechs) + 1 if mechs else 0)
        fig = new_figure(8.5, 1.3 + 0.34 * rows)
        if mechs:
            ax_e, ax_m = fig.subplots(2, 1, height_ratios=[max(len(errs), 1), len(mechs)])
        else:
            ax_e, ax_m = fig.add_subplot(), None
        draw_errors(ax_e, errs, mu)
        ax_e.set_title(f"Test error beside the paper's bound (μ = {mu:g})", loc="left", fontsize=9)
        if ax_m is not None:
            draw_mechanisms(ax_m, mechs)
            ax_m.set_title("The mechanism behind the bounds", loc="left", fontsize=9)
        handles = [
            Patch(color=ALLOWED, alpha=0.3, label="allowed by the bound"),
            Line2D([], [], color="k", lw=1, label="95% CI, test examples"),
            Line2D([], [], color="k", lw=3.5, alpha=0.45, label="95% CI, seeds"),
        ] + [
            Line2D(
                [],
                [],
                ls="",
                marker=MARKERS[v],
                color=VERDICT_COLORS[v],
                markeredgecolor="k",
                label=VERDICT_TEXT[v],
            )
            for v in (True, False, None)
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=6, frameon=False)
        headline(fig, f"{n_pass} of {len(judged)} theorem checks pass")
    return fig


FAMILIES = (
    ("", "feature learning (CNN)"),
    *((f"{s.name}.", s.label) for s in stages.of(stages.SYNTHETIC, stages.BASELINE)),
)
"""Prefix of each learner family's results, and its name: learned features, then the baselines."""
METHODS = tuple((s.name, s.short) for s in stages.of(stages.SYNTHETIC, stages.METHOD)[:4])
"""The methods a fixed-feature family runs again (single, ensemble, training average, KD)."""


def fixed_features_figure(results: dict[str, Any]) -> Figure:
    """err/μ of single / ensemble / training the average / KD with learned features, random
    features and the NTK (claim 11: only with learned features does KD keep the ensemble's gain).
    Needs the ``random_features`` or ``ntk`` stage."""
    mu = mu_of(results)
    if not any(get(results, f"{p}single.test_error.all") is not None for p, _ in FAMILIES[1:]):
        require(results, "random_features.single.test_error", "the learned-against-fixed-features figure")
    fams = [(p, lab) for p, lab in FAMILIES if get(results, f"{p}single.test_error.all") is not None]
    methods = [(k, lab) for k, lab in METHODS if any(get(results, f"{p}{k}.test_error.all") for p, _ in fams)]
    ticks = []
    for prefix, label in fams:
        err = {k: nanmean(get(results, f"{prefix}{k}.test_error.all", [])) for k, _ in METHODS}
        gain = err["single"] - err["ensemble"]
        shares = [
            f"{name} {(err['single'] - err[k]) / gain:.0%}"
            for k, name in METHODS[2:]
            if gain > 0 and not math.isnan(err[k])
        ]
        ticks.append(label + ("\nkept: " + ", ".join(shares) if shares else ""))
    with style():
        fig = new_figure(7.5, 3.4)
        ax = fig.add_subplot()
        width = 0.8 / len(methods)
        colors = dict(
            zip(
                [k for k, _ in METHODS],
                (OKABE_ITO["blue"], OKABE_ITO["orange"], OKABE_ITO["bluish_green"], OKABE_ITO["vermillion"]),
                strict=True,
            )
        )
        for j, (key, label) in enumerate(methods):
            xs, ys = [], []
            for f, (prefix, _) in enumerate(fams):
                e = get(results, f"{prefix}{key}.test_error.all")
                if e is not None:
                    xs.append(f + (j - (len(methods) - 1) / 2) * width)
                    ys.append(nanmean(e) / mu)
            ax.bar(xs, ys, width=width * 0.95, color=colors[key], label=label, edgecolor="k", linewidth=0.5)
        ax.set_xticks(np.arange(len(fams)), ticks)
        ax.set_ylabel("test error / μ")
        ax.set_xlabel("learner")
        ax.legend(frameon=False, ncols=len(methods), loc="upper left")
        ax.margins(y=0.2)
        headline(fig, "How much of the ensemble's gain training the average and KD keep")
    return fig
