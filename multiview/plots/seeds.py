"""Figures of tidy tables (:mod:`multiview.tidy`): the spread over models and over master seeds.

* :func:`seed_spread_figure`: each method's err/μ, every model a dot, every master seed its mean
  with a 95 % interval over its models, and (with several master seeds) the mean over master
  seeds with its interval, beside the band the paper allows (``multiview plot seeds`` of a run or
  a sweep; :func:`run_seed_spread_figure` for a run's results, in the ``theorems`` group);
* :func:`error_bars_figure`: a summary (:func:`multiview.tidy.summarize`) as lines with error
  bars against a swept parameter, one line per ``hue``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from multiview import stages
from multiview.bounds import bands_over_mu
from multiview.plots.style import CYCLE, OKABE_ITO, headline, new_figure, style
from multiview.stats import seed_interval
from multiview.sweep.phase import axis_label
from multiview.tidy import summarize

if TYPE_CHECKING:
    import pandas as pd

ALLOWED = OKABE_ITO["bluish_green"]


def seed_spread_figure(df: pd.DataFrame, learner: str = "cnn") -> Figure:
    """err/μ of every method of ``learner`` on all test examples: a dot per model, a bar per
    master seed (its mean and 95 % t-interval over its models), and, with several master seeds,
    the mean over them with its t-interval (black), beside the band the paper allows (shaded)."""
    rows = df[(df["learner"] == learner) & (df["stratum"] == "all")]
    if rows.empty:
        raise KeyError(f"no {learner} models on all test examples in this table")
    order = [m for m in stages.names(stages.SYNTHETIC, stages.METHOD) if m in set(rows["method"])]
    seeds = sorted(rows["seed"].dropna().unique())
    bands = bands_over_mu()
    overall = summarize(rows, by=["method"]).set_index("method")
    with style():
        fig = new_figure(7.5, 0.55 * len(order) + 1.6)
        ax = fig.add_subplot()
        n = len(order)
        spread = 0.5 / max(len(seeds), 1)
        for row, method in enumerate(order):
            y = n - 1 - row
            if method in bands:
                low, high = bands[method]
                ax.fill_betweenx([y - 0.45, y + 0.45], low, high, color=ALLOWED, alpha=0.22, lw=0)
            for j, seed in enumerate(seeds):
                yj = y + 0.25 - (j + 0.5) * spread
                values = rows[(rows["method"] == method) & (rows["seed"] == seed)]["error_over_mu"].dropna()
                color = CYCLE[j % len(CYCLE)]
                ax.scatter(values, [yj] * len(values), s=10, color=color, alpha=0.5, lw=0)
                ci = seed_interval(values.tolist())
                mean = float(values.mean()) if len(values) else math.nan
                if ci is not None:
                    ax.plot(ci, [yj, yj], color=color, lw=1.8)
                ax.scatter([mean], [yj], s=22, color=color, edgecolor="k", lw=0.5, zorder=3)
            if len(seeds) > 1:
                o = overall.loc[method]
                yo = y - 0.38
                if not math.isnan(o["low"]):
                    ax.plot([o["low"], o["high"]], [yo, yo], color="k", lw=2.5)
                ax.scatter([o["mean"]], [yo], marker="D", s=26, color="k", zorder=3)
        labels = [stages.get(stages.SYNTHETIC, m).label for m in reversed(order)]
        ax.set_yticks(range(n), labels)
        ax.set_ylim(-0.6, n - 0.4)
        shown = [*rows["error_over_mu"].dropna(), *(bands[m][1] for m in order if m in bands)]
        ax.set_xscale("symlog", linthresh=0.01, linscale=0.6)
        ax.set_xlim(0, max([1.0, *shown]) * 1.15)
        ticks = [t for t in (0, 0.01, 0.05, 0.1, 0.26, 0.5, 1, 2, 5, 10) if t <= max([1.0, *shown]) * 1.15]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_xlabel("test error in units of μ (err / μ)")
        ax.grid(axis="x", color="#DDDDDD", lw=0.6)
        ax.set_axisbelow(True)
        handles = [
            Patch(color=ALLOWED, alpha=0.3, label="allowed by the bound"),
            Line2D([], [], ls="", marker="o", ms=3, color="#777777", label="one model"),
            Line2D(
                [], [], color="#777777", lw=1.8, marker="o", label="master seed: mean, 95% CI over models"
            ),
        ]
        if len(seeds) > 1:
            handles.append(
                Line2D([], [], color="k", lw=2.5, marker="D", label="mean, 95% CI over master seeds")
            )
        fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
        what = f"{len(seeds)} master seed{'s' if len(seeds) != 1 else ''}"
        headline(fig, f"Each method's error over its models and {what}")
    return fig


def run_seed_spread_figure(results: dict) -> Figure:
    """:func:`seed_spread_figure` of one run's results (its models, one master seed)."""
    from multiview.tidy import tidy_frame

    return seed_spread_figure(tidy_frame(results))


def error_bars_figure(
    summary: pd.DataFrame, x: str, hue: str | None = "method", ylabel: str = "test error / μ"
) -> Figure:
    """``summary`` (:func:`multiview.tidy.summarize`) against ``x``: a line per value of ``hue``,
    the mean with its 95 % interval as error bars (their count and what they are over in the
    legend)."""
    with style():
        fig = new_figure(5.5, 3.6)
        ax = fig.add_subplot()
        groups = summary.groupby(hue, sort=False) if hue else [(None, summary)]
        for name, g in groups:
            g = g.sort_values(x)
            below = (g["mean"] - g["low"]).fillna(0).clip(lower=0)
            above = (g["high"] - g["mean"]).fillna(0).clip(lower=0)
            over = f"{int(g['n'].max())} {g['over'].iloc[0]}" if len(g) else ""
            label = f"{name} (95% CI over {over})" if name is not None else f"95% CI over {over}"
            ax.errorbar(g[x], g["mean"], yerr=[below, above], marker="o", ms=4, capsize=3, label=label)
        ax.set_xlabel(axis_label(x))
        ax.set_ylabel(ylabel)
        ax.legend(frameon=False)
    return fig
