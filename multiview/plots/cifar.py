"""Figures of a CIFAR run (``multiview cifar``): accuracy per method, ensemble size, overlap of
the models' mistakes, and the channel-split experiment."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from multiview import stages
from multiview.plots.style import GREY, OKABE_ITO, get, headline, new_figure, num, require, style
from multiview.plots.views import draw_pair_matrix
from multiview.stats import nanmean

METHODS = tuple((s.name, s.label) for s in stages.of(stages.CIFAR, stages.METHOD))
COLORS = {
    "single": OKABE_ITO["black"],
    "ensemble": OKABE_ITO["blue"],
    "training_average": OKABE_ITO["reddish_purple"],
    "kd": OKABE_ITO["orange"],
    "self_kd": OKABE_ITO["bluish_green"],
    "ensemble_of_kd": OKABE_ITO["vermillion"],
}


def _dataset(results: dict[str, Any]) -> str:
    return str(get(results, "config.data.dataset", "CIFAR")).upper().replace("CIFAR", "CIFAR-")


def cifar_methods_figure(results: dict[str, Any]) -> Figure:
    """Test accuracy of every method: one dot per model, a bar at the mean."""
    present = [(key, label) for key, label in METHODS if get(results, f"{key}.test_accuracy") is not None]
    if not present:
        require(results, "single.test_accuracy", "the CIFAR accuracy figure")
    single = nanmean(results["single"]["test_accuracy"]) if "single" in results else float("nan")
    ens = nanmean(get(results, "ensemble.test_accuracy", []))
    with style():
        fig = new_figure(7.5, 3.6)
        ax = fig.add_subplot()
        for x, (key, _) in enumerate(present):
            accs = np.asarray([num(a) for a in results[key]["test_accuracy"]]) * 100
            ax.bar(x, np.nanmean(accs), width=0.65, color=COLORS[key], alpha=0.35, edgecolor=COLORS[key])
            ax.scatter(np.full(accs.shape, x), accs, s=16, color=COLORS[key], zorder=3, linewidths=0)
        ax.set_xticks(range(len(present)), [label for _, label in present], rotation=20, ha="right")
        ax.set_ylabel("test accuracy (%)")
        ax.set_xlabel("method")
        vals = [num(a) * 100 for key, _ in present for a in results[key]["test_accuracy"]]
        lo, hi = np.nanmin(vals), np.nanmax(vals)
        pad = max(1.0, 0.25 * (hi - lo))
        ax.set_ylim(max(0.0, lo - pad), min(100.0, hi + pad))
        if not np.isnan(single):
            ax.axhline(single * 100, color=GREY, ls="--", lw=1)
        story = (
            f"{_dataset(results)}: the ensemble gains {100 * (ens - single):+.1f} points over a single model"
        )
        for key, name in (("kd", "KD"), ("self_kd", "self-KD")):
            acc = nanmean(get(results, f"{key}.test_accuracy", []))
            if not np.isnan(acc) and ens - single > 0:
                story += f"; {name} keeps {(acc - single) / (ens - single):.0%} of it"
        headline(fig, story)
    return fig


def cifar_ensemble_curve_figure(results: dict[str, Any]) -> Figure:
    """Accuracy against ensemble size K (mean over member subsets), for the single models and,
    when present, the KD and self-KD students."""
    curve = require(results, "ensemble.curve", "the CIFAR ensemble curve")
    with style():
        fig = new_figure(5.5, 3.6)
        ax = fig.add_subplot()
        lines = [("ensemble", curve, "ensemble of single models", "o")]
        for key, label, marker in (
            ("ensemble_of_kd", "ensemble of KD students", "s"),
            ("self_kd.ensemble", "ensemble of self-KD students", "^"),
        ):
            c = get(results, f"{key}.curve")
            if c:
                lines.append((key.split(".")[0], c, label, marker))
        for key, c, label, marker in lines:
            ax.plot(
                c["K"], [num(a) * 100 for a in c["accuracy"]], marker=marker, color=COLORS[key], label=label
            )
        ax.set_xlabel("ensemble size $K$")
        ax.set_ylabel("test accuracy (%)")
        ax.set_xticks(curve["K"] if len(curve["K"]) <= 12 else ax.get_xticks())
        ax.legend(frameon=False)
        acc = [num(a) for a in curve["accuracy"]]
        headline(
            fig,
            f"{_dataset(results)}: accuracy rises from {100 * acc[0]:.1f}% (K = 1) to {100 * acc[-1]:.1f}% "
            f"(K = {curve['K'][-1]})",
        )
    return fig


def cifar_mistakes_figure(results: dict[str, Any]) -> Figure:
    """Whose mistakes overlap: the Jaccard index of the single models' wrong sets, and how many
    test images are missed by 0, 1, ..., S single models."""
    ov = require(results, "overlap.single", "the CIFAR wrong-sets figure")
    jac = ov["pairwise_jaccard"]
    counts = ov["missed_by_count"]
    with style():
        fig = new_figure(9.0, 3.8)
        ax_j, ax_c = fig.subplots(1, 2, width_ratios=[1, 1.2])
        im = draw_pair_matrix(ax_j, jac)
        ax_j.set_xlabel("single model $b$")
        ax_j.set_ylabel("single model $a$")
        fig.colorbar(im, ax=ax_j, shrink=0.8, label="Jaccard index of the wrong sets")
        ax_j.set_title("Overlap of the wrong sets of two models", loc="left", fontsize=9)
        x = np.arange(len(counts))
        ax_c.bar(x, counts, color=OKABE_ITO["blue"], width=0.7)
        ax_c.set_xticks(x)
        ax_c.set_yscale("log")
        ax_c.set_xlabel(f"number of single models (of {len(counts) - 1}) that miss the image")
        ax_c.set_ylabel("test images")
        ens = get(results, "overlap.ensemble", {})
        ax_c.set_title(
            f"The ensemble fixes {ens.get('fixed', '–')} images some model misses, "
            f"breaks {ens.get('broken', '–')}",
            loc="left",
            fontsize=9,
        )
        headline(
            fig,
            f"{_dataset(results)}: two single models' mistakes overlap with Jaccard "
            f"{num(ov.get('mean_jaccard')):.2f} "
            f"(independent errors: {num(ov.get('independent_jaccard')):.2f})",
        )
    return fig


def channel_split_figure(results: dict[str, Any]) -> Figure:
    """Accuracy when a new network is trained on 1/n of a trained network's channels at the cut,
    single and ensemble, beside the original network and ensemble."""
    cs = require(results, "channel_split", "the channel-split figure")
    ns = [int(n) for n in cs["n"]]
    single = [nanmean(cs["single"][str(n)]["test_accuracy"]) * 100 for n in ns]
    ens = [num(cs["ensemble"][str(n)]["test_accuracy"]) * 100 for n in ns]
    with style():
        fig = new_figure(5.5, 3.6)
        ax = fig.add_subplot()
        ax.plot(ns, single, "o-", color=OKABE_ITO["black"], label="network on the kept channels")
        ax.plot(ns, ens, "s-", color=OKABE_ITO["blue"], label="ensemble of those networks")
        orig = get(cs, "original.test_accuracy")
        if orig:
            ax.axhline(nanmean(orig) * 100, color=OKABE_ITO["black"], ls=":", lw=1, label="original network")
        if get(cs, "original.ensemble_accuracy") is not None:
            ax.axhline(
                num(cs["original"]["ensemble_accuracy"]) * 100,
                color=OKABE_ITO["blue"],
                ls=":",
                lw=1,
                label="original ensemble",
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks(ns, [f"1/{n}" if n > 1 else "all" for n in ns])
        ax.set_xlabel(
            f"fraction of the {cs.get('channels', '')} channels kept "
            f"after stage {cs.get('cut_after_stage', '')}"
        )
        ax.set_ylabel("test accuracy (%)")
        ax.legend(frameon=False, fontsize=7)
        story = (
            f"{_dataset(results)}: trained on 1/{ns[-1]} of the channels, a network reaches {single[-1]:.1f}%"
        )
        if orig:
            story += f" (all channels: {nanmean(orig) * 100:.1f}%)"
        headline(fig, story)
    return fig
