"""Noise memorization (claim 6): how strongly a model correlates with each training example's own
noise, against fresh noise of the same law, for multi-view and single-view examples.

The probe is the mean over examples of max_{r,p} ⟨w_{y,r}, ξ_p⟩ (``single.memorization``).
A model that cannot fit a single-view example through its dominant view (unlearned) fits it by
memorizing that example's noise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from multiview.plots.style import OKABE_ITO, headline, new_figure, num, require, style
from multiview.stats import nanmean

GROUPS = (
    ("multi_view", "multi-view"),
    ("single_dominant_learned", "single-view,\ndominant view learned"),
    ("single_dominant_unlearned", "single-view,\ndominant view not learned"),
)
NOISE = (
    ("own_noise", "own noise $\\xi_p$", OKABE_ITO["vermillion"]),
    ("fresh_noise", "fresh noise $\\xi'_p$", OKABE_ITO["sky_blue"]),
)


def memorization_figure(results: dict[str, Any], log: bool = True) -> Figure:
    """Bars: the mean over seeds of the own-noise and fresh-noise correlations per group of training
    examples; dots: single seeds. ``log`` puts the correlation on a log axis."""
    mem = require(results, "single.memorization", "the memorization figure")
    groups = [(key, label) for key, label in GROUPS if key in mem]
    ratios = {}
    with style():
        fig = new_figure(7.0, 3.6)
        ax = fig.add_subplot()
        width = 0.36
        x = np.arange(len(groups))
        for j, (nkey, nlabel, color) in enumerate(NOISE):
            offs = (j - 0.5) * width
            means = [nanmean(mem[g][nkey]) for g, _ in groups]
            ax.bar(
                x + offs, means, width=width * 0.95, color=color, label=nlabel, edgecolor="k", linewidth=0.5
            )
            for xi, (g, _) in zip(x, groups, strict=True):
                vals = np.asarray([num(v) for v in mem[g][nkey]])
                ax.scatter(np.full(vals.shape, xi + offs), vals, s=10, color="k", zorder=3, linewidths=0)
        ticks = []
        for g, label in groups:
            own, fresh = nanmean(mem[g]["own_noise"]), nanmean(mem[g]["fresh_noise"])
            ratios[g] = own / fresh if fresh and not np.isnan(fresh) else float("nan")
            n = nanmean(mem[g]["count"])
            extra = (
                f"{n:.0f} examples, own / fresh = {ratios[g]:.0f}"
                if not np.isnan(ratios[g])
                else "no examples"
            )
            ticks.append(f"{label}\n{extra}")
        ax.set_xticks(x, ticks)
        ax.set_xlabel("training examples (per seed: which of its views it learned)")
        ax.set_ylabel("$\\max_{r,p}\\ \\langle w_{y,r}, \\xi_p \\rangle$ (mean over examples)")
        if log:
            ax.set_yscale("log")
        ax.legend(frameon=False, loc="upper left")
        worst = ratios.get("single_dominant_unlearned", float("nan"))
        headline(
            fig,
            "Single-view examples a model cannot explain by a learned view are memorized: "
            + (f"own noise ×{worst:.0f} fresh" if not np.isnan(worst) else "no such examples in this run"),
            fontsize=9,
        )
    return fig
