"""``multiview cifar``: the paper's real-data protocol on CIFAR-10 / CIFAR-100 (typer command).

Importing this module is cheap (typer and the torch-free config only); the data, networks and
training are imported when the command runs.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from multiview import stages
from multiview.cifar.config import ARCH_HELP, DATASETS, LAYOUT_HELP, CifarConfig, build
from multiview.cifar.recipes import RECIPES, recipe_named
from multiview.settings import ConfigError, parse_sets
from multiview.terminal import (
    LOG_DIR_HELP,
    DeviceOpt,
    ThreadsOpt,
    check_out_folder,
    device_option,
    fail,
    run_command,
    tracker_option,
)

Dataset = Enum("Dataset", {name: name for name in DATASETS}, type=str)  # type: ignore[misc]
RecipeName = Enum("RecipeName", {name: name for name in RECIPES}, type=str)  # type: ignore[misc]


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
    ctx: typer.Context,
    dataset: Annotated[Dataset | None, typer.Option(help="The data set.", show_default="cifar10")] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="The data set: torchvision's folder cifar-10-batches-py or cifar-100-python, or a "
            "folder holding one; an ImageFolder tree train/CLASS/*.png and test/CLASS/*.png; or a "
            ".tar.gz of either."
        ),
    ] = None,
    arch: Annotated[str | None, typer.Option(help=f"Network: {ARCH_HELP}.", show_default="fast")] = None,
    recipe: Annotated[RecipeName | None, typer.Option(help="Training recipe.", show_default="fast")] = None,
    seeds: Annotated[
        int | None,
        typer.Option("--seeds", "-S", help="Number of single models S.", show_default="the recipe's"),
    ] = None,
    epochs: Annotated[
        float | None, typer.Option(help="Override the recipe's epochs.", show_default="the recipe's")
    ] = None,
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
            + ", ".join(stages.names(stages.CIFAR))
            + ".",
            show_default="all",
        ),
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            "-s",
            help="Override a setting, e.g. [cyan]--set lr=0.05[/cyan] or [cyan]--set schedule=cosine[/cyan]; "
            "repeatable.",
        ),
    ] = None,
    config_file: Annotated[
        Path | None, typer.Option("--config", "-c", help="A saved config.toml to start from.")
    ] = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = 0,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder.", show_default="runs/cifar-HASH")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Load models whose checkpoints in --out match.")] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            help="Replace a run of another config in --out (refused otherwise); with --resume its "
            "models whose settings did not change are still reused."
        ),
    ] = False,
    download: Annotated[
        bool,
        typer.Option(
            help="Download the data set with torchvision into --data (needs network and torchvision)."
        ),
    ] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where decoded arrays are cached.", show_default="multiview/cifar in the user's cache folder"
        ),
    ] = None,
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
        "data.dataset": dataset.value if dataset else None,
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
        cfg = build_cifar_config(
            config_file=config_file, recipe=recipe.value if recipe else None, sets=sets, flags=flags
        )
    except ConfigError as exc:
        fail(str(exc))
    if not cfg.data.path:
        fail("--data PATH is required (the folder or .tar.gz holding the data set)")
    if not download and not Path(cfg.data.path).expanduser().exists():
        fail(f"--data {cfg.data.path} does not exist: expected {LAYOUT_HELP} (or add --download)")
    out_dir = out or Path("runs") / f"cifar-{cfg.config_hash()}"
    check_out_folder(out_dir, cfg, overwrite)
    tracker = tracker_option(log_dir)
    from multiview.threads import use_threads

    n_threads = use_threads(threads)
    dev = device_option(device)

    from multiview.cifar.data import CifarDataError, download_cifar
    from multiview.cifar.protocol import run_cifar
    from multiview.cifar.report import print_report

    try:
        if download and not Path(cfg.data.path).exists():
            cfg.data.path = str(download_cifar(cfg.data.dataset, cfg.data.path))
        if cfg.recipe.name == "fast" and cfg.model.arch != "fast":
            console.print(
                "[yellow]note: the fast recipe is tuned for the fast network; "
                "consider --recipe paper[/yellow]"
            )
        console.print(
            f"[bold]multiview cifar[/bold]  {cfg.data.dataset}  arch={cfg.model.arch}  "
            f"recipe={cfg.recipe.name}  seeds={cfg.protocol.seeds}  epochs={cfg.recipe.epochs:g}  "
            f"device={dev}  threads={n_threads}  out={out_dir}",
            soft_wrap=True,
        )
        results = run_command(
            ctx,
            out_dir,
            console,
            quiet,
            lambda reporter: run_cifar(cfg, dev, out_dir, resume=resume, reporter=reporter),
            "a smaller batch_size or network; finished models are kept (--resume)",
            tracker,
        )
    except CifarDataError as exc:  # raised by the download or when the run reads the data
        fail(f"data: {exc}")
    print_report(results, console)
    console.print(f"results: {out_dir / 'results.json'}", soft_wrap=True)
