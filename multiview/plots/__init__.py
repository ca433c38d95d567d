"""Figures of a run's results (plain data in, :class:`matplotlib.figure.Figure` out).

Every figure function takes the results dict (``results.json``, see :mod:`multiview.protocol`)
and returns a Figure, but those of :mod:`multiview.plots.seeds`, which take tidy tables
(:func:`multiview.load`: a run or a whole sweep); :func:`save` writes it as PNG/PDF;
:func:`render` writes a whole group.

Groups (``multiview plot GROUP RUN``):

* ``views``: learned-view matrix, the views two seeds share, ensemble coverage against K, KD and
  self-KD students against their teachers;
* ``dynamics``: Λ_{i,ℓ}(t) of winner and loser, the initial margin against the view that won;
* ``distillation``: the students' second views, losing-view progress and err/μ against flow time;
* ``theorems``: each method's err/μ with CI beside the bound, its spread over models; learned
  against fixed features;
* ``memorization``: own-noise against fresh-noise correlation by kind of training example;
* ``cifar``: a CIFAR run (``multiview cifar``): accuracy per method, ensemble size, the models'
  wrong sets, channel split.

Importing this package is cheap: each name below is imported from its module on first use (so
``multiview --help`` does not load matplotlib). The groups and :func:`render` are in
:mod:`multiview.plots.groups`, the shared look, :func:`save` and :func:`load_results` in
:mod:`multiview.plots.style`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, tuple[str, ...]] = {
    "cifar": (
        "channel_split_figure",
        "cifar_ensemble_curve_figure",
        "cifar_methods_figure",
        "cifar_mistakes_figure",
    ),
    "distillation": ("distillation_figure",),
    "dynamics": ("initial_margin_figure", "lambda_trajectories_figure"),
    "groups": ("GROUPS", "SIMULATOR_GROUPS", "FigureFn", "Rendered", "groups_for", "render"),
    "memorization": ("memorization_figure",),
    "seeds": ("error_bars_figure", "run_seed_spread_figure", "seed_spread_figure"),
    "style": ("DEFAULT_FORMATS", "load_results", "save"),
    "theorems": ("fixed_features_figure", "theorems_figure"),
    "views": (
        "coverage_figure",
        "learned_views_figure",
        "shared_views_figure",
        "students_figure",
        "views_summary_figure",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    """``multiview.plots.<name>``: imported from its module on first use (PEP 562)."""
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'multiview.plots' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"multiview.plots.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})
