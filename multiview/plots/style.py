"""Shared look of every figure: colour-blind safe palettes, paper symbols, saving, reading results.

Lines and points use the Okabe-Ito palette (distinguishable under the common colour-vision
deficiencies and in greyscale by lightness); heatmaps use ``cividis``. Figures are created as
:class:`matplotlib.figure.Figure` objects, not through ``pyplot``, so no global state is kept and
they work under any backend (Agg in tests; Jupyter displays them inline).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib as mpl
from matplotlib.figure import Figure

# Okabe & Ito (2008), "Color Universal Design".
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
CYCLE: tuple[str, ...] = tuple(
    OKABE_ITO[c]
    for c in ("blue", "orange", "bluish_green", "vermillion", "reddish_purple", "sky_blue", "yellow", "black")
)
VIEW_COLORS: tuple[str, str] = (OKABE_ITO["blue"], OKABE_ITO["orange"])  # v_{i,1}, v_{i,2}
VERDICT_COLORS: dict[bool | None, str] = {
    True: OKABE_ITO["bluish_green"],
    False: OKABE_ITO["vermillion"],
    None: "#999999",
}
HEATMAP_CMAP = "cividis"
GREY = "#999999"

RC: dict[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=list(CYCLE)),
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,
    "image.cmap": HEATMAP_CMAP,
}

DEFAULT_FORMATS: tuple[str, ...] = ("png", "pdf")


@contextmanager
def style() -> Iterator[None]:
    """The project's rcParams for the duration of the block (figures keep them once drawn)."""
    with mpl.rc_context(RC):
        yield


def new_figure(width: float, height: float, **kwargs: Any) -> Figure:
    """A constrained-layout figure of the given size in inches (call inside :func:`style`)."""
    return Figure(figsize=(width, height), layout="constrained", **kwargs)


def headline(fig: Figure, text: str, **kwargs: Any) -> None:
    """The figure's story as its title: bold, flush left (``kwargs`` go to ``suptitle``)."""
    fig.suptitle(text, x=0.01, ha="left", fontweight="bold", **kwargs)


def view_label(i: int | str = "i", view: int | str = "ℓ") -> str:
    """The paper's name of view ``view`` (0 or 1 here, 1 or 2 in the paper) of class ``i``."""
    ell = view + 1 if isinstance(view, int) else view
    return f"$v_{{{i},{ell}}}$"


def lambda_label(i: int | str = "i", view: int | str = "ℓ", time: str = "") -> str:
    """Λ_{i,ℓ} (optionally at time ``t`` or ``0``), as mathtext."""
    ell = view + 1 if isinstance(view, int) else view
    t = f"({time})" if time else ""
    return f"$\\Lambda_{{{i},{ell}}}{t}$"


def save(
    fig: Figure, path_stem: str | Path, formats: Iterable[str] = DEFAULT_FORMATS, dpi: int = 200
) -> list[Path]:
    """Write ``fig`` to ``path_stem.<fmt>`` for every format (png, pdf, svg, ...); returns the paths."""
    # Embedding TrueType fonts in PDFs makes fontTools warn about the fonts' old header dates.
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        fmt = fmt.strip().lower().lstrip(".")
        if not fmt:
            continue
        path = stem.with_name(f"{stem.name}.{fmt}")
        with style():
            fig.savefig(path, format=fmt, dpi=dpi, metadata=_metadata(fmt))
        paths.append(path)
    return paths


def _metadata(fmt: str) -> dict[str, Any] | None:
    # Reproducible files: no creation dates or software versions in PDF/PNG metadata.
    if fmt == "pdf":
        return {"CreationDate": None, "Producer": None, "Creator": None}
    if fmt == "png":
        return {"Software": None}
    return None


def parse_formats(text: str) -> list[str]:
    """``"png,pdf"`` → ``["png", "pdf"]``; a format matplotlib cannot write, or none at all, is a
    :class:`ValueError` that lists the formats it can."""
    from matplotlib.backend_bases import FigureCanvasBase

    formats = [f.strip().lower().lstrip(".") for f in text.split(",") if f.strip()]
    known = FigureCanvasBase.get_supported_filetypes()
    unknown = [f for f in formats if f not in known]
    if unknown or not formats:
        raise ValueError(
            f"{', '.join(unknown) or repr(text)}: not a figure format; use one or more of "
            f"{', '.join(sorted(known))}, comma-separated"
        )
    return formats


def load_results(path: str | Path) -> dict[str, Any]:
    """A run's results: ``path`` is its ``results.json`` or the folder that holds it. A missing,
    damaged or foreign file is a :class:`~multiview.files.FileFormatError` (a ``ValueError``)
    naming the file."""
    from multiview.files import read_results

    return read_results(path)


def get(results: dict[str, Any], dotted: str, default: Any = None) -> Any:
    """``results["a"]["b"]`` for ``"a.b"``, or ``default`` when any part is missing."""
    node: Any = results
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def require(results: dict[str, Any], dotted: str, what: str) -> Any:
    """Like :func:`get`, but a missing key raises a ``KeyError`` that says which stage to run
    (a present ``null``, a NaN in results.json, is returned as ``None``)."""
    missing = object()
    value = get(results, dotted, missing)
    if value is missing:
        stage = dotted.split(".")[0]
        raise KeyError(
            f"results have no {dotted!r}: {what} needs the {stage!r} stage "
            f"(multiview simulate --only {stage})"
        )
    return value


def num(x: Any) -> float:
    """A JSON number (``null`` for NaN) as a float."""
    return float("nan") if x is None else float(x)


def pct(x: float) -> str:
    return "–" if math.isnan(x) else f"{100 * x:.0f}%"


def mu_of(results: dict[str, Any]) -> float:
    return float(require(results, "config.data.mu", "errors in units of μ"))
