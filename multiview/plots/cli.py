"""``multiview plot``: figures of a run's results.json (PNG and PDF).

The commands attach to the ``plot`` group of :mod:`multiview.sweep.cli` (which adds
``multiview plot phase``) when that module is present, and to a group of their own otherwise.
Matplotlib is imported only when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from multiview.terminal import make_console

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


def _out_dir(run: Path, out: Path | None) -> Path:
    if out is not None:
        return out
    return (run.parent if run.suffix == ".json" else run) / "figures"


def _render(groups: list[str] | None, run: Path, out: Path | None, formats: str) -> None:
    """Draw ``groups`` (None: every group that fits the run) and report what was written."""
    from multiview.plots import groups_for, render
    from multiview.plots.style import load_results, parse_formats

    try:
        results = load_results(run)
    except (FileNotFoundError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="RUN") from None
    fmts = parse_formats(formats)
    if not fmts:
        raise typer.BadParameter("name at least one format", param_hint="--format")
    done = render(results, groups or groups_for(results), _out_dir(run, out), fmts)
    for path in done.written:
        console.print(f"wrote {path}")
    for name, why in done.skipped.items():
        console.print(f"[yellow]skipped {name}[/yellow]: {why}")
    if not done.written:
        console.print("[red]no figure could be drawn from these results[/red]")
        raise typer.Exit(1)


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
    time: Annotated[str, typer.Option(help="x axis of Λ(t): step or flow_time.")] = "step",
) -> None:
    """Learning dynamics: Λ_{i,ℓ}(t) of winner and loser, and the lottery at initialization.

    Λ_{i,1}(t) and Λ_{i,2}(t) for chosen seeds and classes, and the initial margin
    Λ_{i,1}(0)/Λ_{i,2}(0) against the view that won.

    Example: multiview plot dynamics runs/abc123 --seeds 0,1 --classes 0,1,2
    """
    if seeds is None and classes is None and time == "step":
        _render(["dynamics"], run, out, formats)
        return
    if time not in ("step", "flow_time"):
        raise typer.BadParameter("use step or flow_time", param_hint="--time")
    from multiview.plots import initial_margin_figure, lambda_trajectories_figure, save
    from multiview.plots.style import load_results, parse_formats

    results = load_results(run)
    folder = _out_dir(run, out)
    try:
        figures = {
            "lambda_trajectories": lambda_trajectories_figure(
                results, seeds=_ints(seeds, "--seeds"), classes=_ints(classes, "--classes"), time=time
            ),
            "initial_margin": initial_margin_figure(results),
        }
    except (KeyError, IndexError) as exc:
        raise typer.BadParameter(str(exc)) from None
    for name, fig in figures.items():
        for path in save(fig, folder / name, parse_formats(formats)):
            console.print(f"wrote {path}")


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
        raise typer.BadParameter(f"{text!r}: give comma-separated integers", param_hint=option) from None


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
    from multiview.settings import parse_assignment
    from multiview.tidy import label_columns

    try:
        df = multiview.load(path)
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="PATH") from None
    for item in where or []:
        key, value = parse_assignment(item)
        if key not in df.columns:
            raise typer.BadParameter(f"{key}: not a swept parameter of {path}", param_hint="--where")
        df = df[df[key].astype(str) == str(value)] if isinstance(value, str) else df[df[key] == value]
    varying = [c for c in label_columns(df) if df[c].nunique(dropna=False) > 1]
    if varying:
        choices = "; ".join(f"{c} ∈ {{{', '.join(map(str, sorted(df[c].unique())))}}}" for c in varying)
        raise typer.BadParameter(f"swept parameters vary ({choices}): pin them", param_hint="--where")
    try:
        fig = seed_spread_figure(df, learner)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0]), param_hint="--learner") from None
    folder = out if out is not None else (path.parent if path.suffix == ".json" else path) / "figures"
    for written in save(fig, folder / "seed_spread", parse_formats(formats)):
        console.print(f"wrote {written}")


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
