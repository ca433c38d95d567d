"""Learning dynamics: Λ_{i,ℓ}(t) of the winning and the losing view, and the lottery at init.

Λ_{i,ℓ}(t) = max_r ⟨w_{i,r}(t), v_{i,ℓ}⟩ is logged every ``train.log_every`` steps in
``single.history.Lambda`` ([T][S][k][2]); ``single.views.Lambda_init`` holds Λ(0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from multiview.plots.style import (
    GREY,
    OKABE_ITO,
    VIEW_COLORS,
    get,
    headline,
    lambda_label,
    new_figure,
    num,
    pct,
    require,
    style,
)

OUTCOMES = (
    ("$v_{i,1}$ only", OKABE_ITO["blue"], "o"),
    ("$v_{i,2}$ only", OKABE_ITO["orange"], "s"),
    ("both", OKABE_ITO["bluish_green"], "^"),
    ("none", GREY, "x"),
)


def winners(learned: Any, final: Any) -> np.ndarray:
    """(S, k) index of the winning view: the learned one, or the larger final Λ when both or
    neither were learned."""
    le = np.asarray(learned, dtype=bool)
    fin = np.asarray(final, dtype=float)
    by_lambda = fin.argmax(-1)
    one = le.sum(-1) == 1
    return np.where(one, le.argmax(-1), by_lambda)


def outcome_codes(learned: Any) -> np.ndarray:
    """(S, k): 0 = v_{i,1} only, 1 = v_{i,2} only, 2 = both, 3 = none."""
    le = np.asarray(learned, dtype=bool)
    return np.select([le[..., 0] & ~le[..., 1], ~le[..., 0] & le[..., 1], le.all(-1)], [0, 1, 2], default=3)


def draw_lambda_trajectory(
    ax: Axes,
    t: np.ndarray,
    lam: np.ndarray,
    winner: int,
    threshold: float | None = None,
    linthresh: float = 1e-3,
) -> None:
    """Λ_{i,1}(t), Λ_{i,2}(t) of one (seed, class): ``lam`` (T, 2); winner solid, loser dashed."""
    for view in (0, 1):
        won = view == winner
        ax.plot(
            t,
            lam[:, view],
            color=VIEW_COLORS[view],
            ls="-" if won else "--",
            lw=2.0 if won else 1.3,
        )
    if threshold is not None:
        ax.axhline(threshold, color=GREY, ls=":", lw=1)
    ax.set_yscale("symlog", linthresh=linthresh)


def lambda_trajectories_figure(
    results: dict[str, Any],
    seeds: Sequence[int] | None = None,
    classes: Sequence[int] | None = None,
    time: str = "step",
) -> Figure:
    """Λ_{i,1}(t) and Λ_{i,2}(t) for chosen ``seeds`` (rows) and ``classes`` (columns), 0-based
    indices (default: the first three seeds and first four classes). ``time`` = ``step`` (gradient
    steps) or ``flow_time`` (Σ η_t, the gradient-flow time of the normalized step rules)."""
    h = require(results, "single.history", "the Λ(t) trajectories")
    if "Lambda" not in h:
        raise KeyError("single.history has no 'Lambda': the run logged no view probes")
    lam = np.asarray(h["Lambda"], dtype=float)  # (T, S, k, 2)
    T, S, k, _ = lam.shape
    seeds = list(seeds) if seeds is not None else list(range(min(3, S)))
    classes = list(classes) if classes is not None else list(range(min(4, k)))
    for what, chosen, n in (("seed", seeds, S), ("class", classes, k)):
        outside = [i for i in chosen if not 0 <= i < n]
        if outside or not chosen:
            raise ValueError(
                f"{what} {', '.join(map(str, outside)) or '(none)'} is not in the run: "
                f"its {what} indices are 0–{n - 1}"
            )
    views = results["single"]["views"]
    win = winners(views["learned"], views.get("Lambda_final", lam[-1]))
    thr = get(results, "single.views.threshold")
    sigma0 = num(get(results, "config.model.sigma_0", 1e-3))
    if time == "flow_time":
        tt = np.asarray(h["flow_time"], dtype=float)  # (T, S)
        xlabel = r"flow time $\sum_t \eta_t$"
    else:
        tt = np.repeat(np.asarray(h["step"], dtype=float)[:, None], S, axis=1)
        xlabel = "gradient step $t$"
    with style():
        fig = new_figure(1.2 + 2.3 * len(classes), 0.9 + 1.9 * len(seeds))
        axes = fig.subplots(len(seeds), len(classes), squeeze=False, sharex=True, sharey=True)
        for r, s in enumerate(seeds):
            for c, i in enumerate(classes):
                ax = axes[r, c]
                draw_lambda_trajectory(ax, tt[:, s], lam[:, s, i], int(win[s, i]), thr, linthresh=sigma0)
                ax.set_title(
                    f"seed {s}, class {i + 1}: $v_{{{i + 1},{int(win[s, i]) + 1}}}$ wins",
                    fontsize=8,
                    loc="left",
                )
                if c == 0:
                    ax.set_ylabel(lambda_label("i", "\\ell", "t"))
                if r == len(seeds) - 1:
                    ax.set_xlabel(xlabel)
        handles = [
            Line2D([], [], color=VIEW_COLORS[0], lw=2, label="$\\Lambda_{i,1}$"),
            Line2D([], [], color=VIEW_COLORS[1], lw=2, label="$\\Lambda_{i,2}$"),
            Line2D([], [], color="k", lw=2, label="winner"),
            Line2D([], [], color="k", lw=1.3, ls="--", label="loser"),
        ]
        if thr is not None:
            handles.append(Line2D([], [], color=GREY, ls=":", label=f"learned threshold {num(thr):.3g}"))
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
        one = num(views.get("exactly_one_fraction"))
        headline(
            fig,
            "The winning view (solid) takes off, the loser (dashed) stalls: "
            f"exactly one view learned in {pct(one)} of (seed, class) pairs",
        )
    return fig


def _ratio_points(results: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, int]:
    views = require(results, "single.views", "the lottery figure")
    L0 = np.asarray(views["Lambda_init"], dtype=float).reshape(-1, 2)
    codes = outcome_codes(views["learned"]).reshape(-1)
    ok = (L0 > 0).all(-1)
    return L0[ok, 0] / L0[ok, 1], codes[ok], int((~ok).sum())


def draw_initial_margin(ax: Axes, results: dict[str, Any]) -> None:
    """Λ_{i,1}(0)/Λ_{i,2}(0) (log scale) against which view was learned, one point per (seed, class)."""
    ratio, codes, dropped = _ratio_points(results)
    rng = np.random.default_rng(0)
    for code, (label, color, marker) in enumerate(OUTCOMES):
        sel = codes == code
        y = code + rng.uniform(-0.18, 0.18, size=int(sel.sum()))
        ax.scatter(ratio[sel], y, s=14, color=color, marker=marker, alpha=0.8, label=label, linewidths=0.8)
    ax.axvline(1.0, color="k", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_yticks(range(len(OUTCOMES)), [o[0] for o in OUTCOMES])
    ax.set_ylim(len(OUTCOMES) - 0.5, -0.5)
    _ratio_ticks(ax, ratio)
    ax.set_xlabel("initial margin " + lambda_label("i", 0, "0") + " / " + lambda_label("i", 1, "0"))
    ax.set_ylabel("views learned at the end")
    note = f" ({dropped} pairs with a $\\Lambda(0) \\leq 0$ left out)" if dropped else ""
    ax.set_title("Left of 1, $v_{i,2}$ was ahead; right, $v_{i,1}$" + note, loc="left", fontsize=9)


def _ratio_ticks(ax: Axes, ratio: np.ndarray) -> None:
    """Powers of two as fractions (1/4, 1/2, 1, 2, 4) on a log axis that covers ``ratio``."""
    finite = ratio[np.isfinite(ratio) & (ratio > 0)]
    span = int(np.ceil(np.abs(np.log2(finite)).max())) if finite.size else 1
    step = max(1, -(-span // 4))
    span = max(1, step * -(-span // step))
    exps = range(-span, span + 1, step)
    ax.set_xticks([2.0**e for e in exps], [f"1/{2**-e}" if e < 0 else f"{2**e}" for e in exps])
    ax.set_xticks([], minor=True)
    ax.set_xlim(2.0 ** -(span + 0.3), 2.0 ** (span + 0.3))


def draw_agreement_by_ratio(ax: Axes, results: dict[str, Any]) -> None:
    """Lottery agreement per bin of max/min Λ(0), with the number of (seed, class) pairs."""
    b = require(results, "single.views.lottery.by_initial_ratio", "the lottery-by-margin panel")
    lows, highs = b["bin_low"], b["bin_high"]
    agree = np.asarray([num(a) for a in b["agreement"]])
    counts = b["count"]
    x = np.arange(len(lows))
    ax.bar(x, np.nan_to_num(agree), color=OKABE_ITO["blue"], width=0.7)
    for xi, a, n in zip(x, agree, counts, strict=True):
        ax.text(xi, (0 if np.isnan(a) else a) + 0.02, f"n={n}", ha="center", va="bottom", fontsize=7)
    ax.axhline(0.5, color=GREY, ls="--", lw=1)
    labels = [
        f"[{num(lo):g}, {'∞' if hi is None else f'{num(hi):g}'})" for lo, hi in zip(lows, highs, strict=True)
    ]
    ax.set_xticks(x, labels, rotation=35, ha="right")
    ax.set_ylim(0, 1.12)
    ax.set_xlabel(
        "initial margin: max / min of " + lambda_label("i", 0, "0") + ", " + lambda_label("i", 1, "0")
    )
    ax.set_ylabel("learned view = larger $\\Lambda(0)$")
    ax.set_title("Agreement with the lottery by margin (dashed: chance)", loc="left", fontsize=9)


def initial_margin_figure(results: dict[str, Any]) -> Figure:
    """The lottery: the initial margin Λ_{i,1}(0)/Λ_{i,2}(0) against the view that won."""
    agreement = num(require(results, "single.views.lottery_agreement", "the lottery figure"))
    with style():
        fig = new_figure(10.0, 3.6)
        ax_pts, ax_bins = fig.subplots(1, 2, width_ratios=[1.4, 1])
        draw_initial_margin(ax_pts, results)
        draw_agreement_by_ratio(ax_bins, results)
        headline(
            fig,
            f"The view ahead at initialization is the one learned in {pct(agreement)} "
            "of classes with one view learned",
        )
    return fig
