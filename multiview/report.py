"""Rich tables of a run's results (used by the CLI; plain data in, renderables out)."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table

from multiview import stages
from multiview.stats import nanmean


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def method_rows(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, part) of every method in the results, in protocol order: the paper's methods, then
    the first four again for each fixed-feature family (``random features: ensemble``)."""
    methods = stages.of(stages.SYNTHETIC, stages.METHOD)
    rows = [(m.label, results[m.name]) for m in methods if m.name in results]
    for family in stages.of(stages.SYNTHETIC, stages.BASELINE):
        for m in methods[:4]:
            part = results.get(family.name, {}).get(m.name)
            if part is not None:
                rows.append((f"{family.label}: {m.label}", part))
    return rows


def _views(part: dict[str, Any], sep: str) -> str:
    """The fractions of (model, class) pairs with one / both / no views learned, or –."""
    v = part.get("views") or {}
    if "exactly_one_fraction" not in v:
        return "–"
    return sep.join(f"{v[k]:.2f}" for k in ("exactly_one_fraction", "both_fraction", "none_fraction"))


def seeds_table(results: dict[str, Any]) -> Table:
    """Per seed: training accuracy, test error (multi-view / single-view / all), views learned."""
    s = results["single"]
    learned = s["views"]["learned"]
    t = Table(title="Single models, one row per seed", title_justify="left")
    for col in (
        "seed",
        "train acc",
        "err multi-view",
        "err single-view",
        "err all",
        "err/μ",
        "views: one / both / none",
    ):
        t.add_column(col, justify="right")
    mu = results["config"]["data"]["mu"]
    errs = s["test_error"]
    for i, acc in enumerate(s["train_accuracy"]):
        counts = [sum(1 for c in learned[i] if sum(c) == n) for n in (1, 2, 0)]
        t.add_row(
            str(i),
            _fmt(acc, 3),
            _fmt(errs["multi_view"][i]),
            _fmt(errs["single_view"][i]),
            _fmt(errs["all"][i]),
            _fmt(errs["all"][i] / mu if mu else None, 3),
            " / ".join(str(c) for c in counts),
        )
    return t


def methods_table(results: dict[str, Any]) -> Table:
    """One row per method of the protocol, errors averaged over its models."""
    mu = results["config"]["data"]["mu"]
    t = Table(title=f"The protocol (test error; μ = {mu:g})", title_justify="left")
    for col in (
        "method",
        "models",
        "err all",
        "err/μ",
        "multi-view",
        "single-view",
        "views one / both / none",
    ):
        t.add_column(col, justify="right")
    for label, part in method_rows(results):
        e = part["test_error"]
        m = nanmean(e["all"])
        t.add_row(
            label,
            str(len(e["all"])),
            _fmt(m),
            _fmt(m / mu if mu else None, 3),
            _fmt(nanmean(e["multi_view"])),
            _fmt(nanmean(e["single_view"])),
            _views(part, " / "),
        )
    return t


def ensemble_table(results: dict[str, Any]) -> Table:
    """Ensemble error against size K beside the coverage prediction."""
    c = results["ensemble"]["curve"]
    t = Table(title="Ensemble against size K (mean over member subsets)", title_justify="left")
    for col in ("K", "err all", "err single-view", "classes covered", "fair-coin prediction 2^-K"):
        t.add_column(col, justify="right")
    for i, K in enumerate(c["K"]):
        t.add_row(
            str(K),
            _fmt(c["all"][i]),
            _fmt(c["single_view"][i]),
            _fmt(c["covered"][i], 3),
            _fmt(c["predicted_single_view"][i]),
        )
    return t


def verdict_table(results: dict[str, Any]) -> Table:
    """The theorem checks: claim, measured value, bound, CI, verdict."""
    t = Table(title="Theorem checks", title_justify="left", show_lines=False)
    for col in ("check", "measured", "/μ", "bound", "95% CI (test)", "95% CI (seeds)", "verdict"):
        t.add_column(col)
    for b in results.get("bounds", []):
        bound = b["bound"]
        if "rule" in bound:
            btxt = bound["rule"].replace(
                "err(single) − ½·(err(single) − err(ensemble))", f"{bound['half_gain_error']:.4f}"
            )
        else:
            parts = []
            if "low" in bound:
                parts.append(f"≥ {bound['low']:.4g}")
            if "high" in bound:
                parts.append(f"≤ {bound['high']:.4g}" if "low" in bound else f"< {bound['high']:.4g}")
            btxt = ", ".join(parts)
        ci_b = b["ci95"]["binomial"]
        ci_s = b["ci95"]["seeds"]
        verdict = {True: "[green]pass[/green]", False: "[red]FAIL[/red]", None: "[yellow]n/a[/yellow]"}[
            b["passed"]
        ]
        t.add_row(
            f"{b['name']}\n[dim]{b['claim']}[/dim]",
            _fmt(b["measured"]),
            _fmt(b["measured_over_mu"], 3),
            btxt,
            f"[{ci_b[0]:.4f}, {ci_b[1]:.4f}]" if ci_b else "–",
            f"[{ci_s[0]:.4f}, {ci_s[1]:.4f}]" if ci_s else "–",
            verdict,
        )
    return t


def timing_table(results: dict[str, Any]) -> Table:
    """Seconds per stage; for a CIFAR run also the training seconds and images per second of a model."""
    tm = results.get("timing", {})
    per, ips = tm.get("seconds_per_model", {}), tm.get("images_per_second", {})
    t = Table(title="Wall time (s)", title_justify="left")
    t.add_column("stage")
    for col in ("seconds", *(("training s / model", "images / s") if per else ())):
        t.add_column(col, justify="right")
    for k, v in tm.items():
        if isinstance(v, (int, float)):
            model = (f"{per[k]:.2f}" if k in per else "", f"{ips[k]:.0f}" if k in ips else "") if per else ()
            t.add_row(k, f"{v:.1f}", *model)
    return t


def print_report(results: dict[str, Any], console: Console) -> None:
    if "single" in results:
        console.print(seeds_table(results))
    console.print(methods_table(results))
    if "ensemble" in results:
        console.print(ensemble_table(results))
    console.print(verdict_table(results))
    console.print(timing_table(results))


def markdown_summary(results: dict[str, Any], label: str = "") -> str:
    """One markdown table of the protocol's methods (err, err/μ, single-view error, views) and
    the verdicts, for docs and notes."""
    mu = results["config"]["data"]["mu"]
    lines = [
        f"**{label}**" if label else "",
        "",
        "| method | err | err/μ | err single-view | views one/both/none |",
        "|---|---|---|---|---|",
    ]
    for label, part in method_rows(results):
        m = nanmean(part["test_error"]["all"])
        lines.append(
            f"| {label} | {_fmt(m)} | {_fmt(m / mu if mu else None, 3)} "
            f"| {_fmt(nanmean(part['test_error']['single_view']))} | {_views(part, '/')} |"
        )
    lines += ["", "| check | measured | /μ | verdict |", "|---|---|---|---|"]
    for b in results.get("bounds", []):
        verdict = {True: "pass", False: "FAIL", None: "n/a"}[b["passed"]]
        lines.append(
            f"| {b['name']} | {_fmt(b['measured'])} | {_fmt(b['measured_over_mu'], 3)} | {verdict} |"
        )
    return "\n".join(lines)
