"""The ``multiview`` command line (typer). Thin: parse, build a config, call the library, print."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from multiview import stages
from multiview.config import SimConfig, get_preset, preset_help
from multiview.settings import ConfigError, parse_sets
from multiview.terminal import (
    LOG_DIR_HELP,
    DeviceOpt,
    JobsOpt,
    ThreadsOpt,
    check_out_folder,
    device_option,
    fail,
    make_console,
    run_command,
    tracker_option,
)

app = typer.Typer(
    help=(
        "Simulate Allen-Zhu & Li's multi-view theory of ensembles, knowledge distillation and "
        "self-distillation: sample multi-view data, train the two-layer smoothed-ReLU CNN from many "
        "seeds at once, measure which view each seed learned, and check every theorem's bound."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
)
console = make_console()


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"multiview {version('multiview')}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    pass


class DType(StrEnum):
    float32 = "float32"
    float64 = "float64"


def build_config(
    preset: str | None,
    config_file: Path | None,
    sets: list[str] | None,
    seeds: int | None = None,
    dtype: str | None = None,
    only: str | None = None,
) -> SimConfig:
    """Preset, then config file, then ``--set`` and the dedicated flags, validated at the end; a
    bad value is refused (:func:`~multiview.terminal.fail`) with the key named."""
    try:
        cfg = get_preset(preset or "default")
        if config_file is not None:
            cfg = SimConfig.load_toml(config_file, base=cfg)
        overrides: dict[str, object] = parse_sets(sets)
        if seeds is not None:
            overrides["n_seeds"] = seeds
        if dtype is not None:
            overrides["train.dtype"] = dtype
        if only is not None:
            overrides["protocol.stages"] = only
        return cfg.with_overrides(overrides)
    except ConfigError as exc:
        fail(str(exc))


PresetOpt = Annotated[
    str | None,
    typer.Option(
        "--preset",
        "-p",
        help="Start from a named preset (see [bold]multiview presets[/bold]).",
        show_default="default",
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="A TOML file of settings (\\[data], \\[model], \\[train], \\[probes], \\[protocol]; "
        "[bold]multiview config[/bold] prints one), applied on top of the preset.",
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", "-s", help="Override one setting, e.g. [cyan]--set data.mu=0.2[/cyan]; repeatable."
    ),
]


@app.command()
def simulate(
    ctx: typer.Context,
    preset: PresetOpt = None,
    config_file: ConfigOpt = None,
    sets: SetOpt = None,
    seeds: Annotated[
        int | None,
        typer.Option(
            "--seeds", "-S", help="Number of seeds S trained in one batch.", show_default="the preset's"
        ),
    ] = None,
    device: DeviceOpt = "auto",
    dtype: Annotated[
        DType | None, typer.Option(help="Floating-point type of training.", show_default="the preset's")
    ] = None,
    threads: ThreadsOpt = 0,
    jobs: JobsOpt = 0,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder.", show_default="runs/<config hash>"),
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated stages to run (their prerequisites are added): "
            + ", ".join(stages.names(stages.SYNTHETIC))
            + ".",
            show_default="all",
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Reuse the finished stages saved in --out (an interrupted run goes on).")
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            help="Replace a run of another config in --out (refused otherwise); with --resume its "
            "stages whose settings did not change are still reused."
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
    log_dir: Annotated[Path | None, typer.Option("--log-dir", help=LOG_DIR_HELP)] = None,
) -> None:
    """Run the paper's protocol on one configuration and print the verdict.

    Trains S single models (seeds batched in one tensor), then, by default, their ensemble,
    training the average, knowledge distillation (from the ensemble, and from a one-hot teacher
    as the control), self-distillation, the ensemble of KD students and the random-feature / NTK
    baselines; prints tables and the theorem checks; writes results.json, tidy.csv / tidy.parquet
    (one row per model × method × stratum) and config.toml to the output folder, results.json and
    the tidy table again after every stage.

    Examples:

      multiview simulate --preset smoke

      multiview simulate --set data.mu=0.2 --set model.q=3 --seeds 20 --only single,ensemble

      multiview simulate --out runs/a --resume     (after Ctrl-C: finish the run)
    """
    cfg = build_config(preset, config_file, sets, seeds, dtype.value if dtype else None, only)
    out_dir = out or Path("runs") / cfg.config_hash()
    check_out_folder(out_dir, cfg, overwrite)
    tracker = tracker_option(log_dir)
    from multiview.threads import plan_jobs, sleep_when_idle, threads_per_job, use_threads

    sleep_when_idle()  # before torch is imported
    dev = device_option(device)
    if dev.type == "cpu":
        n_jobs, each = plan_jobs(threads, jobs, cfg.step_elements())
        n_threads = use_threads(each * n_jobs)
    else:  # one device: its stages one after another unless asked
        n_jobs = max(1, jobs)
        n_threads = use_threads(threads, cfg.step_elements())
    from multiview.protocol import run_protocol
    from multiview.report import print_report

    each = threads_per_job(n_threads, n_jobs)  # as the driver shares them out
    workers = f"  jobs={n_jobs}×{each} threads" if n_jobs > 1 else f"  threads={n_threads}"
    console.print(
        f"[bold]multiview simulate[/bold]  preset={preset or 'default'}  seeds={cfg.n_seeds}  "
        f"device={dev}  dtype={cfg.train.dtype}{workers}  out={out_dir}",
        soft_wrap=True,
    )
    results = run_command(
        ctx,
        out_dir,
        console,
        quiet,
        lambda reporter: run_protocol(cfg, dev, out_dir, resume=resume, reporter=reporter, jobs=n_jobs),
        "fewer seeds (--seeds), a smaller test set (data.n_test) or a smaller train.memory_budget_mb; "
        "finished stages are kept (--resume)",
        tracker,
    )
    print_report(results, console)
    console.print(f"results: {out_dir / 'results.json'}", soft_wrap=True)


@app.command("report")
def show_report(
    run: Annotated[Path, typer.Argument(help="A run folder (or its results.json).")],
    markdown: Annotated[bool, typer.Option(help="Print a markdown summary instead of the tables.")] = False,
) -> None:
    """Print the tables and theorem checks of a finished (or partial) run again."""
    from multiview.files import FileFormatError, read_results

    try:
        results = read_results(run)
    except FileFormatError as exc:
        fail(str(exc))
    try:
        if results.get("mode") == "cifar":
            from multiview.cifar.report import print_report as print_cifar_report

            print_cifar_report(results, console)
        elif markdown:
            from multiview.report import markdown_summary

            typer.echo(markdown_summary(results, str(run)))
        else:
            from multiview.report import print_report

            print_report(results, console, run)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, ZeroDivisionError) as exc:
        fail(
            f"{run} is not a results.json this version of multiview can read "
            f"({type(exc).__name__}: {exc}); was it edited, or written by another program?"
        )


@app.command("presets")
def list_presets() -> None:
    """List the named presets."""
    from rich.table import Table

    t = Table(title="Presets")
    t.add_column("name")
    t.add_column("what it is")
    for name, text in preset_help().items():
        t.add_row(name, text)
    console.print(t)


@app.command("config")
def show_config(
    preset: PresetOpt = None,
    config_file: ConfigOpt = None,
    sets: SetOpt = None,
) -> None:
    """Print the resolved configuration as TOML (a starting point for --config files): every key
    [bold]--set[/bold] accepts, with its value."""
    cfg = build_config(preset, config_file, sets)
    typer.echo(cfg.to_toml())


from multiview.plots.cli import plot_app  # noqa: E402  (multiview plot overlap | dynamics | theorems | ...)

if not any(group.name == "plot" for group in app.registered_groups):
    app.add_typer(plot_app, name="plot")

from multiview.sweep.cli import collect, sweep  # noqa: E402  (multiview sweep | collect | plot phase)
from multiview.sweep.cli import plot_app as sweep_plot_app  # noqa: E402

app.command("sweep")(sweep)
app.command("collect")(collect)
if not any(group.name == "plot" for group in app.registered_groups):
    app.add_typer(sweep_plot_app, name="plot")


from multiview.cifar.cli import cifar as cifar_command  # noqa: E402  (multiview cifar: the real-data protocol)

app.command("cifar")(cifar_command)


def main() -> None:  # pragma: no cover
    app()
