"""The figure groups of ``multiview plot GROUP RUN`` and :func:`render`, which draws a group.

:data:`GROUPS` maps each group (``views``, ``dynamics``, ``distillation``, ``theorems``,
``memorization``, ``cifar``) to its figures; :func:`groups_for` picks those that fit a run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from multiview.plots.cifar import (
    channel_split_figure,
    cifar_ensemble_curve_figure,
    cifar_methods_figure,
    cifar_mistakes_figure,
)
from multiview.plots.distillation import distillation_figure
from multiview.plots.dynamics import initial_margin_figure, lambda_trajectories_figure
from multiview.plots.memorization import memorization_figure
from multiview.plots.seeds import run_seed_spread_figure
from multiview.plots.style import DEFAULT_FORMATS, save
from multiview.plots.theorems import fixed_features_figure, theorems_figure
from multiview.plots.views import (
    coverage_figure,
    learned_views_figure,
    shared_views_figure,
    students_figure,
    views_summary_figure,
)

FigureFn = Callable[[dict[str, Any]], Figure]

GROUPS: dict[str, dict[str, FigureFn]] = {
    "views": {
        "learned_views": learned_views_figure,
        "shared_views": shared_views_figure,
        "coverage": coverage_figure,
        "students": students_figure,
        "views_summary": views_summary_figure,
    },
    "dynamics": {
        "lambda_trajectories": lambda_trajectories_figure,
        "initial_margin": initial_margin_figure,
    },
    "distillation": {
        "distillation": distillation_figure,
    },
    "theorems": {
        "theorems": theorems_figure,
        "seed_spread": run_seed_spread_figure,
        "fixed_features": fixed_features_figure,
    },
    "memorization": {
        "memorization": memorization_figure,
    },
    "cifar": {
        "cifar_methods": cifar_methods_figure,
        "cifar_ensemble_curve": cifar_ensemble_curve_figure,
        "cifar_mistakes": cifar_mistakes_figure,
        "channel_split": channel_split_figure,
    },
}
SIMULATOR_GROUPS = ("views", "dynamics", "distillation", "theorems", "memorization")


def groups_for(results: dict[str, Any]) -> tuple[str, ...]:
    """The figure groups that fit a run: ``cifar`` for a CIFAR run, the simulator's otherwise."""
    return ("cifar",) if results.get("mode") == "cifar" else SIMULATOR_GROUPS


@dataclass
class Rendered:
    """What :func:`render` wrote, and which figures it skipped (name → reason)."""

    written: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def render(
    results: dict[str, Any],
    groups: Iterable[str],
    out_dir: str | Path,
    formats: Iterable[str] = DEFAULT_FORMATS,
) -> Rendered:
    """Draw every figure of ``groups`` into ``out_dir/<name>.<fmt>``. A figure whose stage the run
    did not include (a ``KeyError``) is skipped with the reason, the others are still written."""
    formats = list(formats)
    done = Rendered()
    for group in groups:
        if group not in GROUPS:
            raise ValueError(f"unknown figure group {group!r}; choose from {', '.join(GROUPS)}")
        for name, fn in GROUPS[group].items():
            try:
                fig = fn(results)
            except KeyError as exc:
                done.skipped[name] = str(exc.args[0]) if exc.args else repr(exc)
                continue
            done.written += save(fig, Path(out_dir) / name, formats)
    return done
