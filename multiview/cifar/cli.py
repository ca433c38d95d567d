"""``multiview cifar``: the paper's real-data protocol on CIFAR-10 / CIFAR-100 (typer command).

Importing this module is cheap (typer and the torch-free config only); the data, networks and
training are imported when the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from multiview import stages
from multiview.cifar.config import ARCH_HELP, CifarConfig, build
from multiview.cifar.recipes import recipe_named
from multiview.settings import ConfigError, parse_sets
from multiview.terminal import LOG_DIR_HELP, device_option, tracker_option


def build_cifar_config(
    *,
    config_file: Path | None = None,
    recipe: str | None = None,
    sets: list[str] | None = None,
    flags: dict[str, object] | None = None,
) -> CifarConfig:
    """The recipe's defaults (or a saved config file), then ``--set`` items, then the dedicated
    flags (``flags`` maps setting names to values; None means not given), validated."""
    if config_file is not None:
        cfg = CifarConfig.load_toml(config_file)
        if recipe is not None and recipe != cfg.recipe.name:
            cfg.recipe = recipe_named(recipe)
    else:
        cfg = build(recipe or "fast")
    overrides = parse_sets(sets)
    overrides.update({k: v for k, v in (flags or {}).items() if v is not None})
    return cfg.with_overrides(overrides)


def cifar(
    dataset: Annotated[str | None, typer.Option(help="cifar10 (default) or cifar100.")] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="The data: cifar-10-batches-py/ or cifar-100-python/ (or a folder holding it), "
            "an ImageFolder tree train/<class>/, test/<class>/, or a .tar.gz of either."
        ),
    ] = None,
    arch: Annotated[str | None, typer.Option(help=f"Network: {ARCH_HELP}.")] = None,
    recipe: Annotated[str | None, typer.Option(help="Training recipe: fast (default) or paper.")] = None,
    seeds: Annotated[int | None, typer.Option("--seeds", "-S", help="Number of single models S.")] = None,
    epochs: Annotated[float | None, typer.Option(help="Override the recipe's epochs.")] = None,
    train_subset: Annotated[
        int | None,
        typer.Option(help="Train on a class-balanced seeded subset of this many images (0 = all)."),
    ] = None,
    test_subset: Annotated[
        int | None, typer.Option(help="Test on a class-balanced seeded subset of this many images (0 = all).")
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated stages (their prerequisites are added): "
            + ",".join(stages.names(stages.CIFAR))
        ),
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            "-s",
            help="Override a setting, e.g. [cyan]--set lr=0.05[/cyan] or recipe.schedule=cosine.",
        ),
    ] = None,
    config_file: Annotated[
        Path | None, typer.Option("--config", "-c", help="A saved config.toml to start from.")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder (default runs/cifar-<hash>).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Load models whose checkpoints in --out match.")] = False,
    download: Annotated[
        bool,
        typer.Option(
            help="Download the data set with torchvision into --data (needs network and torchvision)."
        ),
    ] = False,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Where decoded arrays are cached (default ~/.cache/multiview/cifar).")
    ] = None,
    threads: Annotated[
        int, typer.Option(help="CPU threads for torch (0 = its default); 1 is fastest on a busy machine.")
    ] = 0,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
    log_dir: Annotated[Path | None, typer.Option("--log-dir", help=LOG_DIR_HELP)] = None,
) -> None:
    """Train S single models on CIFAR, their ensemble, KD and self-KD students, training the
    average, the channel-split experiment and the error-overlap analysis; print the paper's table.

    Writes config.toml, results.json, tidy.csv / tidy.parquet (one row per model × method) and one
    checkpoint per model to the output folder.

    Examples:

      multiview cifar --data ../shared/data/cifar10-jpeg.tar.gz --seeds 3 --train-subset 5000

      multiview cifar --dataset cifar100 --data ~/data/cifar-100-python --arch wrn-28-10 --recipe paper
    """
    from multiview.terminal import make_console

    console = make_console()
    flags: dict[str, object] = {
        "data.dataset": dataset,
        "data.path": str(data) if data is not None else None,
        "data.train_subset": train_subset,
        "data.test_subset": test_subset,
        "data.cache_dir": str(cache_dir) if cache_dir is not None else None,
        "model.arch": arch,
        "protocol.seeds": seeds,
        "protocol.stages": only,
        "recipe.epochs": epochs,
    }
    try:
        cfg = build_cifar_config(config_file=config_file, recipe=recipe, sets=sets, flags=flags)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None
    if not cfg.data.path:
        raise typer.BadParameter("--data PATH is required (the folder or .tar.gz holding the data set)")
    dev = device_option(device)
    tracker = tracker_option(log_dir)
    if threads < 0:
        raise typer.BadParameter(f"--threads {threads}: must be 0 (torch's default) or more")
    if threads > 0:
        import torch

        torch.set_num_threads(threads)

    from multiview.cifar.data import CifarDataError, download_cifar
    from multiview.cifar.protocol import run_cifar
    from multiview.cifar.report import print_report
    from multiview.progress import reporting

    try:
        if download and not Path(cfg.data.path).exists():
            cfg.data.path = str(download_cifar(cfg.data.dataset, cfg.data.path))
        out_dir = out or Path("runs") / f"cifar-{cfg.config_hash()}"
        if cfg.recipe.name == "fast" and cfg.model.arch != "fast":
            console.print(
                "[yellow]note: the fast recipe is tuned for the fast network; "
                "consider --recipe paper[/yellow]"
            )
        console.print(
            f"[bold]multiview cifar[/bold]  {cfg.data.dataset}  arch={cfg.model.arch}  "
            f"recipe={cfg.recipe.name}  "
            f"seeds={cfg.protocol.seeds}  epochs={cfg.recipe.epochs:g}  device={dev}  out={out_dir}"
        )
        with reporting(console, quiet, tracker) as reporter:
            results = run_cifar(cfg, dev, out_dir, resume=resume, reporter=reporter)
    except CifarDataError as exc:
        console.print(f"[red]data error:[/red] {exc}")
        raise typer.Exit(2) from None
    print_report(results, console)
    console.print(f"results: {out_dir / 'results.json'}")
