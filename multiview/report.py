"""Rich tables of a run's results (used by the CLI; plain data in, renderables out).

Two error rates appear, each labelled: the protocol table's ``err (raw)`` is the error on the test
set as drawn; the theorem checks' ``err (stratified)`` weighs the multi-view and single-view
errors by the configured μ, (1 − μ)·err_multi + μ·err_single, which removes the noise of how many
test examples happened to be single-view (:mod:`multiview.bounds`). Training stages that ran out
of steps above their loss threshold are flagged (``not converged``), and a partial run
(``complete: false``) is announced above the tables with the command that finishes it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from multiview import bounds, stages
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
        "err (raw)",
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


def training_status(part: dict[str, Any]) -> str:
    """How a stage's models stopped: ``converged``, ``flow-time horizon``, ``budget run`` (threshold
    0: trains for its budget by design) or, in yellow, ``3000/3000 steps, not converged (8 of 8)``;
    empty for stages that train nothing (ensembles)."""
    stopped = part.get("stopped_by")
    if not isinstance(stopped, list) or not stopped:
        return ""
    n = len(stopped)
    steps = [s for s in part.get("steps", []) if isinstance(s, (int, float))]
    most = max(steps) if steps else None
    budget = part.get("max_steps", most)
    threshold = part.get("loss_threshold")
    stuck = part.get("not_converged")
    if stuck is None:  # results written before the count was recorded
        stuck = sum(1 for by in stopped if by == "max_steps") if threshold != 0 else 0
    notes = []
    if stuck:
        notes.append(f"[yellow]{most}/{budget} steps, not converged ({stuck} of {n})[/yellow]")
    by_loss = sum(1 for by in stopped if by == "loss_threshold")
    if by_loss:
        notes.append("converged" if by_loss == n else f"converged {by_loss} of {n}")
    by_time = sum(1 for by in stopped if by == "flow_time")
    if by_time:
        notes.append("flow-time horizon" + ("" if by_time == n else f" ({by_time} of {n})"))
    budget_run = sum(1 for by in stopped if by == "max_steps") - stuck
    if budget_run > 0:
        notes.append(f"{budget} steps (no loss threshold)")
    return "; ".join(notes)


def methods_table(results: dict[str, Any]) -> Table:
    """One row per method of the protocol, raw errors averaged over its models, and how its
    training stopped."""
    mu = results["config"]["data"]["mu"]
    t = Table(
        title=f"The protocol (test error on the test set as drawn, averaged over models; μ = {mu:g})",
        title_justify="left",
    )
    for col in (
        "method",
        "models",
        "err (raw)",
        "err/μ",
        "multi-view",
        "single-view",
        "views one / both / none",
        "training",
    ):
        t.add_column(col, justify="left" if col == "training" else "right")
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
            training_status(part),
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


_THEOREM_PREFIX = re.compile(r"^(Thm \d+|mechanism)( of Thm \d+)?: ")


def _bound_text(bound: dict[str, Any]) -> str:
    if "rule" in bound:
        return (
            bound["rule"]
            .replace("err(single) − ½·(err(single) − err(ensemble))", f"{bound['half_gain_error']:.4f}")
            .replace("err(single) − ½·(err(single) − err(kd))", f"{bound['half_gain_error']:.4f}")
        )
    parts = []
    if "low" in bound:
        parts.append(f"≥ {bound['low']:.4g}")
    if "high" in bound:
        parts.append(f"≤ {bound['high']:.4g}" if "low" in bound else f"< {bound['high']:.4g}")
    return ", ".join(parts)


def _interval(ci: Any) -> str:
    if not isinstance(ci, (list, tuple)) or len(ci) != 2 or None in ci:
        return ""
    return f"[{ci[0]:.4f}, {ci[1]:.4f}]"


def _stratified_note(results: dict[str, Any]) -> str:
    mu = results["config"]["data"]["mu"]
    drawn = (results.get("data") or {}).get("test_single_view_fraction")
    frac = f" (here {drawn:.4f})" if isinstance(drawn, (int, float)) else ""
    return (
        f"err (stratified) = (1 − μ)·err(multi-view) + μ·err(single-view) with the configured μ = {mu:g}, "
        f"the error over the whole distribution; 'raw' (and the protocol table's err (raw)) is the "
        f"error on the test set as drawn, whose single-view fraction{frac} varies around μ, so the two "
        "differ a little. Intervals: 95 % over test examples (Wilson), and over models (seeds). "
        "Mechanism rows measure fractions of (model, class) pairs, not errors."
    )


def verdict_table(results: dict[str, Any]) -> Table:
    """The theorem checks: the theorem each tests, the claim, the bound, the measured value with
    its 95 % intervals, the verdict; a failed check that the documentation explains at this size
    gets a one-line pointer to the page (the verdict stays FAIL)."""
    t = Table(
        title="Theorem checks",
        title_justify="left",
        caption=_stratified_note(results),
        caption_justify="left",
        show_lines=True,
    )
    for col in ("theorem", "check", "bound", "measured (95% CI, test)", "/μ", "95% CI (seeds)", "verdict"):
        t.add_column(col, justify="right" if col in ("/μ",) else "left")
    for b in results.get("bounds", []):
        name = b["name"]
        theorem = b.get("theorem") or bounds.theorem_of(name)
        claim = _THEOREM_PREFIX.sub("", b["claim"])
        check = Text(claim)
        if b.get("note"):
            check.append(f"\n{b['note']}", style="dim")
        why = bounds.explained_in(name) if b["passed"] is False else None
        if why:
            check.append(f"\nsee {why}", style="dim italic")
        ci = b.get("ci95") or {}
        measured = Text(_fmt(b["measured"]))
        if ci.get("binomial"):
            measured.append(f" {_interval(ci['binomial'])}")
        if "raw" in b:
            measured.append(f"\nstratified; raw {_fmt(b['raw'])}", style="dim")
        stage = b.get("stage") or bounds.stage_of(name)
        stuck = (results.get(stage) or {}).get("not_converged") if stage else None
        if stuck:
            n = len((results.get(stage) or {}).get("stopped_by") or [])
            measured.append(f"\n{stuck} of {n} models not converged", style="yellow")
        verdict = {True: Text("pass", "green"), False: Text("FAIL", "bold red"), None: Text("n/a", "yellow")}[
            b["passed"]
        ]
        t.add_row(
            theorem,
            check,
            _bound_text(b["bound"]),
            measured,
            _fmt(b["measured_over_mu"], 3),
            _interval(ci.get("seeds")) or "–",
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


def partial_notice(results: dict[str, Any], source: str | Path | None = None) -> Panel | None:
    """A panel announcing a partial run (``complete: false``): which stages are there, which are
    missing, and the command that finishes it; None for a complete run."""
    if results.get("complete", True) is not False:
        return None
    wanted = (results.get("config") or {}).get("protocol", {}).get("stages") or stages.names(stages.SYNTHETIC)
    try:
        planned = stages.resolve(stages.SYNTHETIC, wanted)
    except ValueError:
        planned = list(stages.names(stages.SYNTHETIC))
    done = [name for name in planned if name in results]
    missing = [name for name in planned if name not in results]
    lines = [
        f"stages finished: {', '.join(done) or 'none'}",
        f"not run yet: {', '.join(missing) or 'none (the run stopped while writing its summary)'}",
        "The tables and checks below cover the finished stages only.",
    ]
    if source is not None:
        folder = Path(source)
        folder = folder.parent if folder.suffix == ".json" else folder
        lines.append(
            f"Finish it: multiview simulate --config {folder / 'config.toml'} --out {folder} --resume"
        )
    return Panel(
        Text("\n".join(lines)),
        title="[bold yellow]PARTIAL RUN (complete: false)[/bold yellow]",
        title_align="left",
        border_style="yellow",
    )


def print_report(results: dict[str, Any], console: Console, source: str | Path | None = None) -> None:
    """Every table of a run's results; a partial run is announced first (``source``: the run folder
    or its results.json, named in the command that finishes it)."""
    notice = partial_notice(results, source)
    if notice is not None:
        console.print(notice)
    if "single" in results:
        console.print(seeds_table(results))
    console.print(methods_table(results))
    if "ensemble" in results:
        console.print(ensemble_table(results))
    console.print(verdict_table(results))
    console.print(timing_table(results))
    if notice is not None:
        console.print(notice)


def markdown_summary(results: dict[str, Any], label: str = "") -> str:
    """One markdown table of the protocol's methods (err, err/μ, single-view error, views) and
    the verdicts, for docs and notes."""
    mu = results["config"]["data"]["mu"]
    lines = [
        f"**{label}**" if label else "",
        "",
        "| method | err (raw) | err/μ | err single-view | views one/both/none |",
        "|---|---|---|---|---|",
    ]
    for label, part in method_rows(results):
        m = nanmean(part["test_error"]["all"])
        lines.append(
            f"| {label} | {_fmt(m)} | {_fmt(m / mu if mu else None, 3)} "
            f"| {_fmt(nanmean(part['test_error']['single_view']))} | {_views(part, '/')} |"
        )
    lines += ["", "| theorem | check | measured (stratified) | /μ | verdict |", "|---|---|---|---|---|"]
    for b in results.get("bounds", []):
        verdict = {True: "pass", False: "FAIL", None: "n/a"}[b["passed"]]
        theorem = b.get("theorem") or bounds.theorem_of(b["name"])
        measured, over_mu = _fmt(b["measured"]), _fmt(b["measured_over_mu"], 3)
        lines.append(f"| {theorem} | {b['name']} | {measured} | {over_mu} | {verdict} |")
    if results.get("complete") is False:
        lines += ["", "**partial run** (`complete: false`): only the stages above have finished."]
    return "\n".join(lines)
