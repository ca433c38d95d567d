"""The tables of a sweep (``multiview collect``): a row per unit, and a row per model.

:func:`build_table`, one row per unit. Columns, in order: ``unit`` (the config hash), ``status``,
every swept key (dotted names, e.g. ``data.mu``), ``seed`` (the master seed), the metrics of
:data:`METRICS`, then the whole config flattened as ``config.<section>.<key>``. Metrics are means
over the unit's S models; a metric whose stage did not run is NaN.

:func:`build_tidy`, one row per model × method × stratum of every finished unit: the tidy tables of
the units (:mod:`multiview.tidy`, the rows their ``tidy.csv`` holds, computed from their
``results.json`` so that units finished before those tables existed are included), with the swept
keys as columns; what error bars over seeds and master seeds are drawn from.

Both are written as CSV and Parquet (through pandas) for notebooks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from multiview import stages
from multiview.files import read_json
from multiview.settings import flatten_sections
from multiview.stats import nanmean
from multiview.sweep.store import DONE, SweepStore
from multiview.tidy import TABLE_FORMATS as TABLE_FORMATS  # the writer of both tables, and its formats
from multiview.tidy import cell, frame, tidy_rows
from multiview.tidy import have_parquet as have_parquet
from multiview.tidy import write_table as write_table

METHODS = stages.names(stages.SYNTHETIC, stages.METHOD)
LABELS = {m: stages.get(stages.SYNTHETIC, m).label for m in METHODS}
GAINS = {
    "ensemble_gain": "ensemble",
    "kd_gain": "kd",
    "self_kd_gain": "self_kd",
    "training_average_gain": "training_average",
}

#: Metric column → what it is (also the phase diagram's colour-bar label).
METRICS: dict[str, str] = {
    "single_view_error": "single-view test error of single models",
    **{f"error_{m}": f"test error: {LABELS[m]}" for m in METHODS},
    **{f"single_view_error_{m}": f"single-view test error: {LABELS[m]}" for m in METHODS[1:]},
    "ensemble_gain": "ensemble gain: err(single) − err(ensemble)",
    "kd_gain": "KD gain: err(single) − err(KD)",
    "self_kd_gain": "self-KD gain: err(single) − err(self-KD)",
    "training_average_gain": "training-average gain: err(single) − err(training the average)",
    "exactly_one_fraction": "fraction of (model, class) with exactly one view learned",
    "lottery_agreement": "lottery agreement: learned view = larger Λ at init",
    "bound_pass_rate": "bound pass rate (passed / judged)",
    "bounds_judged": "number of bounds judged",
    "wall_seconds": "wall time of the unit (s)",
}


def unit_metrics(results: dict[str, Any]) -> dict[str, float]:
    """The table's metrics of one unit's ``results.json``."""
    nan = float("nan")
    out: dict[str, float] = {}
    errors = {m: _mean_error(results, m, "all") for m in METHODS}
    single_view = {m: _mean_error(results, m, "single_view") for m in METHODS}
    out["single_view_error"] = single_view["single"]
    for m in METHODS:
        out[f"error_{m}"] = errors[m]
    for m in METHODS[1:]:
        out[f"single_view_error_{m}"] = single_view[m]
    for name, method in GAINS.items():
        out[name] = errors["single"] - errors[method]
    views = results.get("views", {})
    out["exactly_one_fraction"] = _number(views.get("exactly_one_fraction"))
    out["lottery_agreement"] = _number(views.get("lottery_agreement"))
    judged = [b for b in results.get("bounds", []) if b.get("passed") is not None]
    out["bounds_judged"] = float(len(judged))
    out["bound_pass_rate"] = sum(1 for b in judged if b["passed"]) / len(judged) if judged else nan
    out["wall_seconds"] = _number(results.get("timing", {}).get("total"))
    return out


def build_table(root: str | Path, include_unfinished: bool = False):
    """A ``pandas.DataFrame`` with one row per unit of the sweep folder ``root`` (finished units
    only, unless ``include_unfinished``; their metrics are then NaN)."""
    import pandas as pd

    store = _store(root)
    swept = list(store.read_plan().get("swept_keys", []))
    rows = []
    for key in store.keys():
        done = store.is_done(key)
        if not done and not include_unfinished:
            continue
        info = store.info(key)
        results = read_json(store.results_path(key)) if done else {}
        config = results.get("config") or info.get("config") or {}
        flat = flatten_config(config)
        row: dict[str, Any] = {"unit": key, "status": DONE if done else store.state(key)}
        row.update(swept_values(flat, swept))
        row["seed"] = flat.get("seed", info.get("seed"))
        row.update(unit_metrics(results) if done else {m: float("nan") for m in METRICS})
        row.update({f"config.{k}": cell(v) for k, v in flat.items()})
        rows.append(row)
    columns = ["unit", "status", *swept, "seed", *METRICS]
    df = pd.DataFrame(rows, columns=None if rows else columns)
    order = [c for c in [*swept, "seed"] if c in df.columns]
    if rows and order:
        df = df.sort_values(order, kind="stable").reset_index(drop=True)
    return df


def build_tidy(root: str | Path):
    """A ``pandas.DataFrame`` with one row per model × method × stratum of every finished unit of
    the sweep folder ``root`` (:mod:`multiview.tidy`), the swept keys after ``seed``, sorted by
    the swept values and the master seed."""
    store = _store(root)
    swept = list(store.read_plan().get("swept_keys", []))
    rows = []
    for key in store.keys():
        if store.is_done(key):
            results = read_json(store.results_path(key))
            flat = flatten_config(results.get("config", {}))
            rows += tidy_rows(results, swept_values(flat, swept))
    df = frame(rows, ("run", "seed", *swept))
    order = [c for c in [*swept, "seed"] if c in df.columns]
    if rows and order:
        df = df.sort_values(order, kind="stable").reset_index(drop=True)
    return df


def flatten_config(config: dict[str, Any]) -> dict[str, Any]:
    """A saved config (the simulator's or CIFAR's) as dotted keys: ``{"data.mu": 0.1, "seed": 0}``."""
    return flatten_sections(config, [k for k, v in config.items() if isinstance(v, dict)])


def swept_values(flat_config: dict[str, Any], swept: list[str]) -> dict[str, Any]:
    """The value of every swept key in a flattened config (lists as text, :func:`multiview.tidy.cell`)."""
    return {k: cell(flat_config.get(k)) for k in swept}


def _store(root: str | Path) -> SweepStore:
    store = SweepStore(root)
    if not store.units_dir.exists():
        raise FileNotFoundError(f"{root} is not a sweep folder (no units/ inside)")
    return store


def _mean_error(results: dict[str, Any], method: str, stratum: str) -> float:
    """The mean test error of a method's models on a stratum (NaN when the run has neither: a
    CIFAR run has no single-view stratum)."""
    errors = (results.get(method) or {}).get("test_error") or {}
    return nanmean(errors[stratum]) if stratum in errors else float("nan")


def _number(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else float("nan")
