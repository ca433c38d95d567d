"""KD, the one-hot-teacher control and self-KD against one size parameter, over master seeds.

    python scripts/kd/finite_size.py runs/sweeps/kd_m runs/paper_kd-s* --x model.m \
        [--out docs/figures/kd_finite_size_m] [--table]

Reads every finished run's results.json: each FOLDER is a sweep folder (``units/<key>/results.json``)
or a run folder (``results.json``),
groups the units by the value of ``--x`` in their config, and draws, for each method, the mean
err/μ over master seeds with its 95 % Student-t interval over master seeds (each master seed draws
its own data, teachers and students, so the master seeds are the independent replicates), beside
Theorem 3's and 4's bounds and the single models. ``--table`` prints the numbers as Markdown.
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from multiview.files import read_results
from multiview.plots.style import OKABE_ITO, new_figure, save, style
from multiview.stats import seed_interval

METHODS = {
    "single": ("single models", "#999999"),
    "kd": ("knowledge distillation", OKABE_ITO["blue"]),
    "kd_onehot": ("KD from a one-hot teacher", OKABE_ITO["orange"]),
    "self_kd": ("self-distillation", OKABE_ITO["bluish_green"]),
    "ensemble": ("ensemble", OKABE_ITO["black"]),
}
BOUNDS = {"kd": 0.01, "self_kd": 0.26}


def config_value(config: dict, dotted: str) -> float:
    node = config
    for part in dotted.split("."):
        node = node[part]
    return float(node)


def stratified_over_mu(part: dict, mu: float) -> float:
    """The stage's mean error over its models, stratified as the theorem checks do, over μ."""
    mv = np.nanmean(np.asarray(part["test_error"]["multi_view"], dtype=float))
    sv = np.nanmean(np.asarray(part["test_error"]["single_view"], dtype=float))
    return ((1 - mu) * mv + mu * sv) / mu


def collect(folders: list[Path], x: str) -> dict[float, dict[str, list[float]]]:
    """x value → method → err/μ per master seed."""
    table: dict[float, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for folder in folders:
        runs = [folder / "results.json"] if (folder / "results.json").exists() else []
        for path in runs or sorted((folder / "units").glob("*/results.json")):
            r = read_results(path)  # a partial run counts with the stages it finished
            mu = r["config"]["data"]["mu"]
            value = config_value(r["config"], x)
            for method in METHODS:
                if method in r:
                    table[value][method].append(stratified_over_mu(r[method], mu))
    return table


def interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95 % Student-t interval over master seeds (NaN bounds with one seed)."""
    m = float(np.mean(values))
    ci = seed_interval(values)
    return (m, math.nan, math.nan) if ci is None else (m, ci[0], ci[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", type=Path, nargs="+", help="sweep folders or run folders")
    ap.add_argument("--x", required=True, help="the config key on the x axis, e.g. model.m")
    ap.add_argument("--out", type=Path, default=None, help="figure path without suffix")
    ap.add_argument("--table", action="store_true")
    a = ap.parse_args()
    table = collect(a.folders, a.x)
    xs = sorted(table)
    if a.table:
        print(f"| {a.x} | " + " | ".join(METHODS[m][0] for m in METHODS) + " |")
        print("|---" * (len(METHODS) + 1) + "|")
        for x in xs:
            cells = []
            for method in METHODS:
                vals = table[x].get(method, [])
                if not vals:
                    cells.append("–")
                    continue
                m, lo, hi = interval(vals)
                ci = f" [{lo:.3f}, {hi:.3f}]" if not math.isnan(lo) else ""
                cells.append(f"{m:.3f}{ci} (n = {len(vals)})")
            print(f"| {x:g} | " + " | ".join(cells) + " |")
    with style():
        fig = new_figure(5.6, 3.8)
        ax = fig.subplots()
        for method, (label, color) in METHODS.items():
            pts = [(x, *interval(table[x][method])) for x in xs if table[x].get(method)]
            if not pts:
                continue
            px, m, lo, hi = (np.asarray(c, dtype=float) for c in zip(*pts, strict=True))
            ax.plot(px, m, "o-", color=color, label=label)
            ok = ~np.isnan(lo)
            ax.fill_between(px[ok], lo[ok], hi[ok], color=color, alpha=0.15, lw=0)
            if method in BOUNDS:
                ax.axhline(BOUNDS[method], color=color, ls="--", lw=1)
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [f"{x:g}" for x in xs])
        ax.set_yscale("symlog", linthresh=0.01)
        ax.set_ylim(bottom=0)
        ax.set_xlabel(a.x)
        ax.set_ylabel(r"test error / $\mu$ (mean over master seeds, 95 % interval)")
        ax.legend(frameon=False, fontsize=7)
        if a.out is not None:
            for path in save(fig, a.out, ["png"]):
                print(f"wrote {path}")


if __name__ == "__main__":
    main()
