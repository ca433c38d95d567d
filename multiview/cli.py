"""The ``multiview`` command line (typer). Thin: parse, build a config, call the library, print."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from multiview import stages
from multiview.config import SimConfig, get_preset, preset_help
from multiview.settings import ConfigError, parse_sets
from multiview.terminal import LOG_DIR_HELP, device_option, make_console, tracker_option

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


def build_config(
    preset: str | None,
    config_file: Path | None,
    sets: list[str] | None,
    seeds: int | None = None,
    dtype: str | None = None,
    only: str | None = None,
) -> SimConfig:
    """Preset, then config file, then ``--set`` and the dedicated flags, validated at the end."""
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
        raise typer.BadParameter(str(exc)) from None


PresetOpt = Annotated[
    str | None,
    typer.Option(
        "--preset",
        "-p",
        help="Start from a named preset (see [bold]multiview presets[/bold]). Default: default.",
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="A TOML file of settings ([data], [model], [train], [probes], [protocol])."
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
    preset: PresetOpt = None,
    config_file: ConfigOpt = None,
    sets: SetOpt = None,
    seeds: Annotated[
        int | None, typer.Option("--seeds", "-S", help="Number of seeds S trained in one batch.")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    dtype: Annotated[str | None, typer.Option(help="float32 or float64.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder (default: runs/<config hash>).")
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated stages to run (their prerequisites are added): "
            + ",".join(stages.names(stages.SYNTHETIC))
        ),
    ] = None,
    resume: Annotated[bool, typer.Option(help="Reuse finished stages saved in --out.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
    log_dir: Annotated[Path | None, typer.Option("--log-dir", help=LOG_DIR_HELP)] = None,
) -> None:
    """Run the paper's protocol on one configuration and print the verdict.

    Trains S single models (seeds batched in one tensor), then, by default, their ensemble,
    training the average, knowledge distillation, self-distillation, the ensemble of KD students
    and the random-feature / NTK baselines; prints tables and the theorem checks; writes
    results.json, tidy.csv / tidy.parquet (one row per model × method × stratum) and config.toml
    to the output folder.

    Examples:

      multiview simulate --preset smoke

      multiview simulate --set data.mu=0.2 --set model.q=3 --seeds 20 --only single,ensemble
    """
    from multiview.progress import reporting
    from multiview.protocol import run_protocol
    from multiview.report import print_report

    cfg = build_config(preset, config_file, sets, seeds, dtype, only)
    dev = device_option(device)
    tracker = tracker_option(log_dir)
    out_dir = out or Path("runs") / cfg.config_hash()
    console.print(
        f"[bold]multiview simulate[/bold]  preset={preset or 'default'}  seeds={cfg.n_seeds}  "
        f"device={dev}  dtype={cfg.train.dtype}  out={out_dir}"
    )
    with reporting(console, quiet, tracker) as reporter:
        results = run_protocol(cfg, dev, out_dir, resume=resume, reporter=reporter)
    print_report(results, console)
    console.print(f"results: {out_dir / 'results.json'}")


@app.command("report")
def show_report(
    run: Annotated[Path, typer.Argument(help="A run folder (or its results.json).")],
    markdown: Annotated[bool, typer.Option(help="Print a markdown summary instead of the tables.")] = False,
) -> None:
    """Print the tables and theorem checks of a finished (or partial) run again."""
    from multiview.files import read_json
    from multiview.report import markdown_summary, print_report

    path = run / "results.json" if run.is_dir() else run
    if not path.exists():
        raise typer.BadParameter(
            f"{path} does not exist: expected a run folder written by multiview simulate"
        )
    results = read_json(path)
    if markdown:
        typer.echo(markdown_summary(results, str(run)))
    else:
        print_report(results, console)


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
    """Print the resolved configuration as TOML (a starting point for --config files)."""
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
