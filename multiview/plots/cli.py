"""``multiview plot``: figures of a run's results.json (PNG and PDF).

The commands attach to the ``plot`` group of :mod:`multiview.sweep.cli` (which adds
``multiview plot phase``) when that module is present, and to a group of their own otherwise.
Matplotlib is imported only when a command runs.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from multiview.terminal import fail, make_console, writable_folder

try:  # the sweep's plot group (``multiview plot phase``), when the sweep package is installed
    from multiview.sweep.cli import plot_app
except ImportError:  # pragma: no cover - depends on which parts of the tree are present
    plot_app = typer.Typer(help="Figures of a run's results.json (PNG and PDF).", no_args_is_help=True)

console = make_console()

RunArg = Annotated[
    Path, typer.Argument(help="A run folder (from multiview simulate --out) or its results.json.")
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", "-o", help="Folder for the figures (default: RUN/figures).")
]
FormatOpt = Annotated[
    str, typer.Option("--format", "-f", help="Comma-separated file formats, e.g. png,pdf,svg.")
]

READ_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)
"""What drawing from a results file that is not one of this version's can raise."""


class TimeAxis(StrEnum):
    step = "step"
    flow_time = "flow_time"


def _out_dir(run: Path, out: Path | None) -> Path:
    if out is not None:
        return out
    return (run.parent if run.suffix == ".json" else run) / "figures"


def _inputs(run: Path, formats: str) -> tuple[dict[str, Any], list[str]]:
    """The run's results and the figure formats, or a refusal naming what is wrong."""
    from multiview.plots.style import load_results, parse_formats

    try:
        fmts = parse_formats(formats)
    except ValueError as exc:
        fail(f"--format {exc}")
    try:
        return load_results(run), fmts
    except ValueError as exc:  # missing, damaged or foreign results.json (FileFormatError)
        fail(str(exc))


def _render(groups: list[str] | None, run: Path, out: Path | None, formats: str) -> None:
    """Draw ``groups`` (None: every group that fits the run) and report what was written."""
    from multiview.plots import groups_for, render

    results, fmts = _inputs(run, formats)
    folder = _out_dir(run, out)
    writable_folder(folder)
    try:
        done = render(results, groups or groups_for(results), folder, fmts)
    except READ_ERRORS as exc:
        fail(f"{run}: cannot draw from these results ({type(exc).__name__}: {exc})")
    except OSError as exc:
        fail(f"{exc.filename or folder}: {exc.strerror or exc}")
    for path in done.written:
        console.print(f"wrote {path}", soft_wrap=True, highlight=False)
    for name, why in done.skipped.items():
        console.print(f"[yellow]skipped {name}[/yellow]: {why}", soft_wrap=True, highlight=False)
    if not done.written:
        fail(f"{run}: no figure could be drawn from these results (each needs a stage the run lacks)")


@plot_app.command("views")
def plot_views(run: RunArg, out: OutOpt = None, formats: FormatOpt = "png,pdf") -> None:
    """Learned views: the views each seed learned, the views seeds share, coverage, students.

    The seeds × (class, view) learned-view matrix, the views two seeds share, union coverage
    against ensemble size beside its 2^(1−K) prediction, and KD / self-KD students against their
    teachers.

    Example: multiview plot views runs/abc123 --out figs --format png,pdf
    """
    _render(["views"], run, out, formats)


plot_app.command("overlap", hidden=True)(plot_views)  # the name the group had before


@plot_app.command("dynamics")
def plot_dynamics(
    run: RunArg,
    out: OutOpt = None,
    formats: FormatOpt = "png,pdf",
    seeds: Annotated[
        str | None, typer.Option(help="Comma-separated seed indices (default: the first 3).")
    ] = None,
    classes: Annotated[
        str | None, typer.Option(help="Comma-separated class indices, 0-based (default: the first 4).")
    ] = None,
    time: Annotated[TimeAxis, typer.Option(help="x axis of Λ(t).")] = TimeAxis.step,
) -> None:
    """Learning dynamics: Λ_{i,ℓ}(t) of winner and loser, and the lottery at initialization.

    Λ_{i,1}(t) and Λ_{i,2}(t) for chosen seeds and classes, and the initial margin
    Λ_{i,1}(0)/Λ_{i,2}(0) against the view that won.

    Example: multiview plot dynamics runs/abc123 --seeds 0,1 --classes 0,1,2
    """
    if seeds is None and classes is None and time is TimeAxis.step:
        _render(["dynamics"], run, out, formats)
        return
    from multiview.plots import initial_margin_figure, lambda_trajectories_figure, save

    picked = {"seeds": _ints(seeds, "--seeds"), "classes": _ints(classes, "--classes")}
    results, fmts = _inputs(run, formats)
    folder = _out_dir(run, out)
    writable_folder(folder)
    try:
        figures = {
            "lambda_trajectories": lambda_trajectories_figure(results, **picked, time=time.value),
            "initial_margin": initial_margin_figure(results),
        }
    except READ_ERRORS as exc:
        message = exc.args[0] if isinstance(exc, (KeyError, ValueError)) and exc.args else exc
        fail(f"{run}: {message}")
    try:
        for name, fig in figures.items():
            for path in save(fig, folder / name, fmts):
                console.print(f"wrote {path}", soft_wrap=True, highlight=False)
    except OSError as exc:
        fail(f"{exc.filename or folder}: {exc.strerror or exc}")


@plot_app.command("distillation")
def plot_distillation(run: RunArg, out: OutOpt = None, formats: FormatOpt = "png,pdf") -> None:
    """Distillation over time: the students' second views, progress and error against flow time.

    For the KD, one-hot-teacher and self-KD students: the fraction of classes whose two views they
    know (beside the coverage their teacher offers), the power-phase progress of every losing view,
    and err/μ on the probe's test examples beside Theorem 3's and 4's bounds.

    Example: multiview plot distillation runs/abc123
    """
    _render(["distillation"], run, out, formats)


def _ints(text: str | None, option: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        fail(f"{option} {text!r}: give comma-separated indices (integers from 0), e.g. 0,1,2")


@plot_app.command("theorems")
def plot_theorems(run: RunArg, out: OutOpt = None, formats: FormatOpt = "png,pdf") -> None:
    """Theorem checks: each method's err/μ with its 95 % CI beside the paper's bound.

    Also learned features against fixed features (random features, NTK) when the run has them.

    Example: multiview plot theorems runs/abc123
    """
    _render(["theorems"], run, out, formats)


@plot_app.command("seeds")
def plot_seeds(
    path: Annotated[Path, typer.Argument(help="A run folder, or a sweep folder (every finished unit).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for the figure (default: PATH/figures).")
    ] = None,
    formats: FormatOpt = "png,pdf",
    where: Annotated[
        list[str] | None,
        typer.Option("--where", "-w", help="A sweep: pin a swept parameter, KEY=VALUE; repeatable."),
    ] = None,
    learner: Annotated[str, typer.Option(help="cnn, random_features or ntk.")] = "cnn",
) -> None:
    """Each method's err/μ over its models and master seeds, with 95 % intervals, beside its bound.

    A dot per model, a bar per master seed (its mean and Student-t interval over its models) and,
    over a sweep's master seeds, their mean and interval. In a sweep, every swept parameter but
    the master seed must be pinned with --where.

    Example: multiview plot seeds runs/sweeps/paper_seeds --where data.mu=0.1
    """
    import multiview
    from multiview.plots import save, seed_spread_figure
    from multiview.plots.style import parse_formats
    from multiview.settings import ConfigError, parse_assignment
    from multiview.tidy import label_columns

    try:
        fmts = parse_formats(formats)
    except ValueError as exc:
        fail(f"--format {exc}")
    try:
        df = multiview.load(path)
    except (FileNotFoundError, ValueError) as exc:
        fail(f"PATH {exc}")
    for item in where or []:
        try:
            key, value = parse_assignment(item)
        except ConfigError as exc:
            fail(f"--where {exc}")
        if key not in label_columns(df):
            swept = ", ".join(label_columns(df)) or "none"
            fail(f"--where {key}: not a swept parameter of {path}; swept: {swept}")
        df = df[df[key].astype(str) == str(value)] if isinstance(value, str) else df[df[key] == value]
    varying = [c for c in label_columns(df) if df[c].nunique(dropna=False) > 1]
    if varying:
        choices = "; ".join(f"{c} ∈ {{{', '.join(map(str, sorted(df[c].unique())))}}}" for c in varying)
        fail(f"swept parameters vary ({choices}): pin them with --where KEY=VALUE")
    try:
        fig = seed_spread_figure(df, learner)
    except KeyError as exc:
        fail(f"--learner {learner}: {exc.args[0]}")
    folder = out if out is not None else (path.parent if path.suffix == ".json" else path) / "figures"
    writable_folder(folder)
    for written in save(fig, folder / "seed_spread", fmts):
        console.print(f"wrote {written}", soft_wrap=True, highlight=False)


@plot_app.command("memorization")
def plot_memorization(run: RunArg, out: OutOpt = None, formats: FormatOpt = "png,pdf") -> None:
    """Noise memorization: correlation with own against fresh noise, by kind of example.

    Multi-view examples, and single-view examples whose dominant view the model did or did not
    learn.

    Example: multiview plot memorization runs/abc123
    """
    _render(["memorization"], run, out, formats)


@plot_app.command("cifar")
def plot_cifar(run: RunArg, out: OutOpt = None, formats: FormatOpt = "png,pdf") -> None:
    """A CIFAR run (multiview cifar): accuracy per method, ensemble size, mistakes, channel split.

    Example: multiview plot cifar runs/cifar10 --format png
    """
    _render(["cifar"], run, out, formats)


@plot_app.command("all")
def plot_all(run: RunArg, out: OutOpt = None, formats: FormatOpt = "png,pdf") -> None:
    """Every figure the run's stages allow (a CIFAR run gets the cifar figures).

    Example: multiview plot all runs/abc123 --out figs
    """
    _render(None, run, out, formats)
