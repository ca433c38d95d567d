"""Long-format ("tidy") tables of results: one row per model × method × stratum.

Every run writes one beside its ``results.json`` (``tidy.csv``, and ``tidy.parquet`` where pyarrow
is installed), rewritten with it after every stage; ``multiview collect`` concatenates those of a
sweep, and :func:`multiview.load` reads either. A row is one test error of one model:

======================  ==========================================================================
column                  what it holds
======================  ==========================================================================
``run``                 the run's config hash (a sweep's unit key)
``seed``                the master seed
*swept keys*            in a sweep, the value of every swept setting (``data.mu``, ...)
``learner``             ``cnn`` (the paper's CNN), ``random_features`` or ``ntk`` (the fixed-feature
                        baselines); in a CIFAR run the network (``fast``, ``wrn-28-10``, ...)
``method``              the stage: ``single``, ``ensemble``, ``training_average``, ``kd``,
                        ``kd_onehot``, ``self_kd``, ``ensemble_of_kd``
``model``               the model's index in its stage: the seed index of a single model or a
                        student, the group of a trained average, 0 for an ensemble
``stratum``             the test examples: ``all``, ``multi_view`` or ``single_view`` (CIFAR: ``all``)
``n_examples``          how many test examples the stratum has
``error``               the model's test error on the stratum
``error_over_mu``       ``error`` in units of the single-view fraction μ (``data.mu``; NaN for CIFAR)
``views_both``,         the fractions of classes whose two views / one view / no view the model
``views_one``,          learned (its Λ ≥ ``probes.learned_threshold``·ϱ; an ensemble counts the
``views_none``          union of its members); NaN where the stage measures no views
``converged``           the training loss reached its threshold (empty for an ensemble)
``stopped_by``          ``loss_threshold``, ``flow_time`` or ``max_steps`` (empty where not trained)
``steps``               training steps taken (CIFAR: optimizer steps)
``flow_time``           gradient-flow time Σ η_t reached (NaN for CIFAR)
``train_accuracy``      accuracy on the training set at the end
``final_loss``          training loss at the end
======================  ==========================================================================

:func:`summarize` turns such a table into means with 95 % intervals: over master seeds where
the table has several (each master seed's models averaged first: the models of one run share its
data), else over the models of the one run.

This module imports no torch; pandas is imported when a frame is built.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from multiview import stages
from multiview.files import atomic_write

if TYPE_CHECKING:
    import pandas as pd

STRATA = ("all", "multi_view", "single_view")
VIEW_COLUMNS = ("views_both", "views_one", "views_none")
TRAINING_COLUMNS = ("converged", "stopped_by", "steps", "flow_time", "train_accuracy", "final_loss")
ROW_COLUMNS = (
    "learner",
    "method",
    "model",
    "stratum",
    "n_examples",
    "error",
    "error_over_mu",
    *VIEW_COLUMNS,
    *TRAINING_COLUMNS,
)
"""The columns of a row after the run's (``run``, ``seed``) and the sweep's labels."""
FLOAT_COLUMNS = ("flow_time", "train_accuracy", "final_loss")
DTYPES = {
    "seed": "Int64",
    "model": "Int64",
    "n_examples": "Int64",
    "converged": "boolean",
    "steps": "Int64",
    "stopped_by": "string",
}
"""Nullable types for the integer and flag columns (an ensemble has no steps)."""
CNN = "cnn"
TABLE_FORMATS = ("csv", "parquet")


# --------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------


def tidy_rows(results: Mapping[str, Any], labels: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The rows of one run's results (a simulator or a CIFAR ``results.json``); ``labels`` are
    columns every row carries after ``seed`` (a sweep's swept values)."""
    config = results.get("config", {})
    head = {"run": results.get("config_hash"), "seed": config.get("seed"), **(labels or {})}
    rows: list[dict[str, Any]] = []
    for learner, method, part in _method_parts(results):
        rows += [{**head, **row} for row in _part_rows(results, learner, method, part)]
    return rows


def _method_parts(results: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(learner, method, part) of every method whose models have test errors, in registry order."""
    if results.get("mode") == "cifar":
        arch = results.get("config", {}).get("model", {}).get("arch", "cifar")
        return [
            (arch, name, results[name])
            for name in stages.names(stages.CIFAR, stages.METHOD)
            if isinstance(results.get(name), dict) and "test_error" in results[name]
        ]
    out = [
        (CNN, name, results[name])
        for name in stages.names(stages.SYNTHETIC, stages.METHOD)
        if isinstance(results.get(name), dict) and "test_error" in results[name]
    ]
    for family in stages.names(stages.SYNTHETIC, stages.BASELINE):
        for method, part in (results.get(family) or {}).items():
            if isinstance(part, dict) and "test_error" in part:
                out.append((family, method, part))
    return out


def _part_rows(
    results: Mapping[str, Any], learner: str, method: str, part: Mapping[str, Any]
) -> list[dict[str, Any]]:
    mu = _mu(results)
    sizes = _stratum_sizes(results)
    errors = part["test_error"]
    learned = (part.get("views") or {}).get("learned")
    rows = []
    for index in range(len(errors["all"])):
        per_model = {**_view_fractions(learned, index), **_training(part, index)}
        for stratum in STRATA:
            if stratum not in errors:
                continue
            error = _number(errors[stratum][index])
            rows.append(
                {
                    "learner": learner,
                    "method": method,
                    "model": index,
                    "stratum": stratum,
                    "n_examples": sizes.get(stratum),
                    "error": error,
                    "error_over_mu": error / mu if mu else math.nan,
                    **per_model,
                }
            )
    return rows


def _mu(results: Mapping[str, Any]) -> float:
    mu = results.get("config", {}).get("data", {}).get("mu")
    return float(mu) if isinstance(mu, (int, float)) and results.get("mode") != "cifar" else math.nan


def _stratum_sizes(results: Mapping[str, Any]) -> dict[str, int]:
    data = results.get("data", {})
    if results.get("mode") == "cifar":
        return {"all": data["n_test_used"]} if "n_test_used" in data else {}
    if "n_test" not in data:
        return {}
    single = data.get("test_single_view", 0)
    return {"all": data["n_test"], "multi_view": data["n_test"] - single, "single_view": single}


def _view_fractions(learned: list | None, index: int) -> dict[str, float]:
    """Fractions of classes with both, one, no view learned by model ``index`` of ``learned``
    (R, k, 2) (NaN without views)."""
    if not learned or index >= len(learned):
        return dict.fromkeys(VIEW_COLUMNS, math.nan)
    counts = [sum(bool(v) for v in views) for views in learned[index]]
    k = len(counts)
    return {
        "views_both": sum(c == 2 for c in counts) / k,
        "views_one": sum(c == 1 for c in counts) / k,
        "views_none": sum(c == 0 for c in counts) / k,
    }


def _training(part: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The per-model training record (CIFAR's ``final_train_loss`` is its ``final_loss``)."""
    source = {"final_loss": "final_train_loss" if "final_train_loss" in part else "final_loss"}
    out: dict[str, Any] = {}
    for column in TRAINING_COLUMNS:
        values = part.get(source.get(column, column))
        value = values[index] if isinstance(values, list) and index < len(values) else None
        out[column] = math.nan if value is None and column in FLOAT_COLUMNS else value
    return out


def cell(value: Any) -> Any:
    """A setting as one table cell: lists become text (``single,ensemble``; ``[1.0, 2.0]``)."""
    if isinstance(value, (list, tuple)):
        if all(isinstance(x, str) for x in value):
            return ",".join(value)
        return json.dumps(list(value))
    return value


def _number(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else math.nan


# --------------------------------------------------------------------------------------------
# Frames and files
# --------------------------------------------------------------------------------------------


def frame(rows: list[dict[str, Any]], leading: tuple[str, ...] = ("run", "seed")) -> pd.DataFrame:
    """A DataFrame of tidy rows with nullable integer and flag columns, ``leading`` first (an
    empty frame still has the row columns)."""
    import pandas as pd

    df = pd.DataFrame(rows) if rows else pd.DataFrame(columns=[*leading, *ROW_COLUMNS])
    for column, dtype in DTYPES.items():
        if column in df.columns:
            df[column] = df[column].astype(dtype)
    return df


def tidy_frame(results: Mapping[str, Any], labels: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The tidy table of one run's results as a ``pandas.DataFrame`` (see the module's columns)."""
    return frame(tidy_rows(results, labels))


def label_columns(df: pd.DataFrame) -> list[str]:
    """The columns a sweep added to a tidy table (its swept keys)."""
    return [c for c in df.columns if c not in ("run", "seed", *ROW_COLUMNS)]


def summarize(
    df: pd.DataFrame,
    by: list[str] | tuple[str, ...] = ("learner", "method", "stratum"),
    value: str = "error_over_mu",
    interval: str = "t",
) -> pd.DataFrame:
    """The mean of ``value`` per group of ``by``, with a 95 % interval: Student-t (``interval =
    "t"``) or a BCa bootstrap (``"bootstrap"``) over master seeds when the group has several
    (``seed``; the mean of each master seed's models first), else over its models.

    Columns: the ``by`` columns, ``mean``, ``low``, ``high`` (NaN below two values), ``n`` (how
    many values the interval is over) and ``over`` (``master seeds`` or ``models``)."""
    import pandas as pd

    from multiview.stats import bootstrap_interval, seed_interval

    if interval not in ("t", "bootstrap"):
        raise ValueError(f"interval {interval!r}: use t or bootstrap")
    bounds_of = seed_interval if interval == "t" else bootstrap_interval
    by = list(by)
    rows = []
    for key, group in df.groupby(by, sort=True, dropna=False):
        seeds = group["seed"].nunique() if "seed" in group else 1
        if seeds > 1:
            values, over = group.groupby("seed")[value].mean().tolist(), "master seeds"
        else:
            values, over = group[value].tolist(), "models"
        present = [float(v) for v in values if not pd.isna(v)]
        ci = bounds_of(present) or [math.nan, math.nan]
        mean = sum(present) / len(present) if present else math.nan
        key = key if isinstance(key, tuple) else (key,)
        rows.append(
            {
                **dict(zip(by, key, strict=True)),
                "mean": mean,
                "low": ci[0],
                "high": ci[1],
                "n": len(present),
                "over": over,
            }
        )
    return pd.DataFrame(rows, columns=[*by, "mean", "low", "high", "n", "over"])


def have_parquet() -> bool:
    """Whether pandas can write Parquet here (pyarrow, the ``parquet`` extra, is installed)."""
    return importlib.util.find_spec("pyarrow") is not None


def write_table(df: pd.DataFrame, prefix: str | Path, formats: tuple[str, ...] = TABLE_FORMATS) -> list[Path]:
    """Write ``<prefix>.csv`` / ``<prefix>.parquet`` atomically; returns the paths written. Every
    format is checked before anything is written; Parquet without pyarrow is a ValueError."""
    prefix = Path(prefix)
    for fmt in formats:
        if fmt not in TABLE_FORMATS:
            raise ValueError(f"unknown table format {fmt!r}; use csv or parquet")
        if fmt == "parquet" and not have_parquet():
            raise ValueError("Parquet needs pyarrow: pip install 'multiview[parquet]' (or use --format csv)")
    written = []
    for fmt in formats:
        path = prefix.with_name(prefix.name + "." + fmt)
        write = df.to_csv if fmt == "csv" else df.to_parquet
        atomic_write(path, lambda fh, write=write: write(fh, index=False))
        written.append(path)
    return written


def write_tidy(folder: str | Path, df: pd.DataFrame) -> list[Path]:
    """``folder/tidy.csv``, and ``folder/tidy.parquet`` when pyarrow is installed."""
    formats = TABLE_FORMATS if have_parquet() else ("csv",)
    return write_table(df, Path(folder) / "tidy", formats)
