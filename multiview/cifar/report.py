"""Rich tables of a CIFAR run's results, laid out like the paper's."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table

from multiview import stages
from multiview.report import timing_table
from multiview.stats import mean_sd

PAPER_COLUMNS = ("single", "ensemble", "kd", "self_kd", "training_average", "ensemble_of_kd")
"""The methods in the order of the paper's CIFAR table (spec §6.1)."""
METHODS = tuple((name, stages.get(stages.CIFAR, name).label) for name in PAPER_COLUMNS)


def _pct(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}%"


def _mean_std(xs: list[float]) -> str:
    if not xs:
        return "–"
    m, sd = mean_sd(xs)
    return _pct(m) if len(xs) == 1 else f"{100 * m:.2f} ± {100 * sd:.2f}%"


def _title(results: dict[str, Any]) -> str:
    c = results["config"]
    d = results.get("data", {})
    return (
        f"{c['data']['dataset'].upper()} test accuracy, {c['model']['arch']}, recipe {c['recipe']['name']} "
        f"({d.get('n_train_used', '?')} training / {d.get('n_test_used', '?')} test images)"
    )


def paper_table(results: dict[str, Any]) -> Table:
    """One row, the paper's columns: single (mean ± std), ensemble, KD, self-KD, training the
    average, ensemble over KD (spec §6.1 and §10)."""
    t = Table(title=_title(results), title_justify="left")
    t.add_column("network")
    for key, _ in METHODS:
        t.add_column(stages.get(stages.CIFAR, key).short, justify="right")
    row = [results["config"]["model"]["arch"]]
    for key, _ in METHODS:
        part = results.get(key)
        row.append(_mean_std(part["test_accuracy"]) if part else "–")
    t.add_row(*row)
    return t


def methods_table(results: dict[str, Any]) -> Table:
    """One row per method: models, their epochs, accuracy mean ± std, range, training seconds per
    model."""
    t = Table(title="Methods", title_justify="left")
    for col in ("method", "models", "epochs", "accuracy", "min", "max", "s / model", "images / s"):
        t.add_column(col, justify="right")
    for key, label in METHODS:
        part = results.get(key)
        if not part:
            continue
        acc = part["test_accuracy"]
        secs = part.get("train_seconds")
        ips = part.get("images_per_second")
        epochs = part.get("epochs")
        t.add_row(
            label,
            str(part.get("K", len(acc))) if key.startswith("ensemble") else str(len(acc)),
            f"{sum(epochs) / len(epochs):g}" if epochs else "–",
            _mean_std(acc),
            _pct(min(acc)),
            _pct(max(acc)),
            f"{sum(secs) / len(secs):.1f}" if secs else "–",
            f"{sum(ips) / len(ips):.0f}" if ips else "–",
        )
    return t


def seeds_table(results: dict[str, Any]) -> Table:
    """Per seed: the single model, its self-distilled student, the KD student of that index."""
    t = Table(title="Per seed", title_justify="left")
    cols = [("single", "single"), ("self_kd", "self-KD"), ("kd", "KD student")]
    t.add_column("seed", justify="right")
    present = [(k, label) for k, label in cols if k in results]
    for _, label in present:
        t.add_column(label, justify="right")
    n = max(len(results[k]["test_accuracy"]) for k, _ in present)
    for i in range(n):
        row = [str(i)]
        for k, _ in present:
            acc = results[k]["test_accuracy"]
            row.append(_pct(acc[i]) if i < len(acc) else "–")
        t.add_row(*row)
    return t


def curve_table(results: dict[str, Any]) -> Table:
    """Ensemble accuracy against its size K, for single models and for KD students."""
    t = Table(title="Ensemble against size K (mean over member subsets)", title_justify="left")
    t.add_column("K", justify="right")
    curves = [(k, label) for k, label in (("ensemble", "single models"), ("ensemble_of_kd", "KD students"))]
    curves = [(k, label) for k, label in curves if k in results]
    for _, label in curves:
        t.add_column(label, justify="right")
    n = max(len(results[k]["curve"]["K"]) for k, _ in curves)
    for i in range(n):
        row = [str(i + 1)]
        for k, _ in curves:
            acc = results[k]["curve"]["accuracy"]
            row.append(_pct(acc[i]) if i < len(acc) else "–")
        t.add_row(*row)
    return t


def channel_split_table(results: dict[str, Any]) -> Table:
    """Like the paper's: single (mean ± std) and ensemble accuracy, original and split to n."""
    cs = results["channel_split"]
    t = Table(
        title=f"Channel split at layer ({cs['layer']}), {cs['channels']} channels, "
        f"new top trained {cs['epochs']:g} epochs",
        title_justify="left",
    )
    t.add_column("")
    t.add_column("original", justify="right")
    for n, kept in zip(cs["n"], cs["kept_channels"], strict=True):
        t.add_column(f"1/{n} ({kept} ch.)" if n > 1 else f"retrained ({kept} ch.)", justify="right")
    t.add_row(
        "single",
        _mean_std(cs["original"]["test_accuracy"]),
        *[_mean_std(cs["single"][str(n)]["test_accuracy"]) for n in cs["n"]],
    )
    t.add_row(
        "ensemble",
        _pct(cs["original"]["ensemble_accuracy"]),
        *[_pct(cs["ensemble"][str(n)]["test_accuracy"]) for n in cs["n"]],
    )
    return t


def mistakes_table(results: dict[str, Any]) -> Table:
    """The overlap analysis in numbers."""
    o = results["overlap"]
    s, e = o["single"], o["ensemble"]
    t = Table(title=f"Which test images are missed ({o['n_test']} images)", title_justify="left")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    errs = s["errors"]
    t.add_row("errors per single model (mean)", f"{sum(errs) / len(errs):.1f}")
    if s["mean_jaccard"] is not None:
        t.add_row(
            "Jaccard of two seeds' wrong sets (measured / if independent)",
            f"{s['mean_jaccard']:.3f} / {s['independent_jaccard']:.3f}",
        )
    t.add_row(
        "missed by at least one / by every single model", f"{s['missed_by_any']} / {s['missed_by_all']}"
    )
    t.add_row("ensemble errors", str(e["errors"]))
    t.add_row("ensemble right where some single model is wrong", str(e["fixed"]))
    t.add_row("ensemble right where most single models are wrong", str(e["fixed_majority"]))
    t.add_row("ensemble wrong where some single model is right", str(e["broken"]))
    for key, label in (("kd", "KD students"), ("self_kd", "self-KD students")):
        if key in o:
            f = [x for x in o[key]["fixes_ensemble_fixes"] if x is not None]
            base = [x for x in o[key]["single_fixes_ensemble_fixes"] if x is not None]
            if f:
                single_rate = sum(base) / max(1, len(base))
                t.add_row(
                    f"{label}: right on the images the ensemble fixes (singles: {single_rate:.2f})",
                    f"{sum(f) / len(f):.2f}",
                )
    if "self_kd" in o:
        fx = [x for x in o["self_kd"]["teacher_errors_fixed"] if x is not None]
        if fx:
            t.add_row(
                "self-KD: fraction of the teacher's errors the student fixes", f"{sum(fx) / len(fx):.2f}"
            )
    return t


def print_report(results: dict[str, Any], console: Console) -> None:
    console.print(paper_table(results))
    console.print(methods_table(results))
    if any(k in results for k in ("single", "kd", "self_kd")):
        console.print(seeds_table(results))
    if "ensemble" in results:
        console.print(curve_table(results))
    if "channel_split" in results:
        console.print(channel_split_table(results))
    if "overlap" in results:
        console.print(mistakes_table(results))
    console.print(timing_table(results))
