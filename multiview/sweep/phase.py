"""Phase diagrams: a metric over two swept parameters, as an annotated heatmap.

:func:`phase_grid` averages the metric over master seeds (and over nothing else: any other
parameter with several values must be pinned with ``where``), with the half-width of its 95 %
Student-t interval over them; :func:`plot_phase` draws it with matplotlib's Agg backend in a
colour-blind-safe colormap, axes labelled with the paper's symbols, every cell annotated with its
mean (± that half-width where there are several master seeds), and writes PNG and PDF.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multiview.stats import seed_interval
from multiview.sweep.collect import METRICS

#: The paper's symbol of each config key (matplotlib mathtext).
SYMBOLS: dict[str, str] = {
    "data.mu": r"$\mu$",
    "data.rho": r"$\rho$",
    "data.Gamma": r"$\Gamma$",
    "data.gamma": r"$\gamma$",
    "data.s": r"$s$",
    "data.k": r"$k$",
    "data.d": r"$d$",
    "data.P": r"$P$",
    "data.C_p": r"$C_p$",
    "data.sigma_p": r"$\sigma_p$",
    "data.n_train": r"$N$",
    "data.n_test": r"$N_{\mathrm{test}}$",
    "model.m": r"$m$",
    "model.q": r"$q$",
    "model.varrho": r"$\varrho$",
    "model.sigma_0": r"$\sigma_0$",
    "train.lr": r"$\eta$",
    "protocol.kd_tau": r"$\tau$",
    "protocol.kd_eta_ratio": r"$\eta'/\eta$",
    "n_seeds": r"$S$",
}
CMAPS = ("cividis", "viridis")


class PhaseError(ValueError):
    """The table cannot give the requested diagram; the message says which option to change."""


@dataclass
class PhaseGrid:
    """Mean of ``metric`` per (y, x) cell, how many units (master seeds) each mean covers, and the
    half-width of its 95 % t-interval over them (NaN below two)."""

    x: str
    y: str
    metric: str
    xs: list[Any]
    ys: list[Any]
    values: list[list[float]]  # [len(ys)][len(xs)]
    counts: list[list[int]]
    half_widths: list[list[float]]


def axis_label(key: str) -> str:
    """``ρ (data.rho)``, or the key itself when the paper has no symbol for it."""
    sym = SYMBOLS.get(key)
    return f"{sym}  ({key})" if sym else key


def phase_grid(df, x: str, y: str, metric: str, where: dict[str, Any] | None = None) -> PhaseGrid:
    """Average ``metric`` over master seeds on the (``x``, ``y``) grid of the table ``df``."""
    where = where or {}
    for name, what in ((x, "--x"), (y, "--y")):
        if name not in df.columns:
            raise PhaseError(f"{what} {name}: not a column of this sweep's table; swept: {_swept(df)}")
    if x == y:
        raise PhaseError(f"--x and --y are both {x}: choose two different parameters")
    if metric not in df.columns:
        raise PhaseError(
            f"--metric {metric}: unknown; choose from {', '.join(m for m in METRICS if m in df.columns)}"
        )
    sub = df[df["status"] == "done"] if "status" in df.columns else df
    for key, value in where.items():
        if key not in sub.columns:
            raise PhaseError(f"--where {key}: not a column of this sweep's table")
        sub = sub[sub[key].astype(str) == str(value)] if isinstance(value, str) else sub[sub[key] == value]
    if sub.empty:
        raise PhaseError("no finished unit matches; run the sweep, or check --where")
    others = [k for k in _swept_list(df) if k not in (x, y, *where) and sub[k].nunique(dropna=False) > 1]
    if others:
        choices = "; ".join(f"{k} ∈ {{{', '.join(map(str, sorted(sub[k].unique())))}}}" for k in others)
        raise PhaseError(f"other swept parameters vary ({choices}): pin them with --where KEY=VALUE")
    xs = sorted(sub[x].unique())
    ys = sorted(sub[y].unique())
    mean = sub.groupby([y, x])[metric].mean()
    count = sub.groupby([y, x])[metric].count()
    cells = sub.groupby([y, x])[metric].apply(list)
    values = [[float(mean.get((yv, xv), math.nan)) for xv in xs] for yv in ys]
    counts = [[int(count.get((yv, xv), 0)) for xv in xs] for yv in ys]
    halves = [[_half_width(cells.get((yv, xv), [])) for xv in xs] for yv in ys]
    return PhaseGrid(x, y, metric, list(xs), list(ys), values, counts, halves)


def _half_width(values: list[float]) -> float:
    ci = seed_interval(values)
    return math.nan if ci is None else (ci[1] - ci[0]) / 2


def plot_phase(
    grid: PhaseGrid,
    out_dir: str | Path,
    formats: tuple[str, ...] = ("png", "pdf"),
    cmap: str = "cividis",
    title: str | None = None,
    seeds: int | None = None,
) -> list[Path]:
    """Draw ``grid`` as an annotated heatmap; write ``phase_<metric>_<x>_<y>.<fmt>`` files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    if cmap not in CMAPS:
        raise PhaseError(f"--cmap {cmap}: use one of the colour-blind-safe maps {', '.join(CMAPS)}")
    z = np.array(grid.values, dtype=float)
    nx, ny = len(grid.xs), len(grid.ys)
    fig, ax = plt.subplots(figsize=(1.1 * nx + 2.8, 0.75 * ny + 1.9))
    finite = z[np.isfinite(z)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin - 0.5 * (abs(vmin) or 1), vmax + 0.5 * (abs(vmax) or 1)
    colormap = plt.get_cmap(cmap).with_extremes(bad="#d9d9d9")
    im = ax.imshow(
        np.ma.masked_invalid(z), origin="lower", cmap=colormap, vmin=vmin, vmax=vmax, aspect="auto"
    )
    ax.set_xticks(range(nx), [_tick(v) for v in grid.xs])
    ax.set_yticks(range(ny), [_tick(v) for v in grid.ys])
    ax.set_xlabel(axis_label(grid.x))
    ax.set_ylabel(axis_label(grid.y))
    for i in range(ny):
        for j in range(nx):
            v = z[i, j]
            if math.isfinite(v):
                r, g, b, _ = colormap((v - vmin) / (vmax - vmin))
                light = 0.299 * r + 0.587 * g + 0.114 * b > 0.5
                half = grid.half_widths[i][j]
                text = _cell(v) + (f"\n±{_cell(half)}" if math.isfinite(half) else "")
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color="black" if light else "white")
            else:
                ax.text(j, i, "–", ha="center", va="center", fontsize=9, color="black")
    label = METRICS.get(grid.metric, grid.metric)
    cbar = fig.colorbar(im, ax=ax)
    cbar.set_label(label)
    n = seeds if seeds is not None else max((c for row in grid.counts for c in row), default=0)
    spread = " ± 95% t-interval" if n > 1 else ""
    ax.set_title(
        title or f"{label}\nmean{spread} over {n} master seed{'s' if n != 1 else ''} per cell", fontsize=10
    )
    fig.tight_layout()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"phase_{grid.metric}_{_slug(grid.x)}_{_slug(grid.y)}"
    paths = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        fig.savefig(path, dpi=150)
        paths.append(path)
    plt.close(fig)
    return paths


def _swept_list(df) -> list[str]:
    skip = {"unit", "status", "seed", *METRICS}
    return [c for c in df.columns if not c.startswith("config.") and c not in skip]


def _swept(df) -> str:
    return ", ".join(_swept_list(df)) or "(nothing)"


def _tick(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _cell(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100 or abs(v) < 1e-3:
        return f"{v:.2g}"
    return f"{v:.3f}".rstrip("0").rstrip(".") if abs(v) < 1 else f"{v:.3g}"


def _slug(key: str) -> str:
    return key.split(".")[-1]
