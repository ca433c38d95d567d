"""Pieces shared by the command lines (``multiview simulate``, ``multiview cifar``, ``multiview
sweep``, ``multiview plot``): the console, the ``--device`` and ``--log-dir`` options (progress
bars are in :mod:`multiview.progress`). torch is imported on use, so importing this module stays
cheap.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from pathlib import Path

    import torch
    from rich.console import Console

    from multiview.progress import Reporter


PIPED_WIDTH = 140
"""Columns of the tables when the output is not a terminal (a log file, a pipe) and ``COLUMNS``
is unset: wide enough that the result tables do not wrap."""


def make_console() -> Console:
    """A rich console; output to a file or a pipe gets ``PIPED_WIDTH`` columns, not rich's 80."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=PIPED_WIDTH)
    return console


def device_option(name: str) -> torch.device:
    """The device of a ``--device`` option (:func:`multiview.device.resolve_device`); a bad name is
    a :class:`typer.BadParameter`."""
    from multiview.device import resolve_device
    from multiview.settings import ConfigError

    try:
        return resolve_device(name)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None


LOG_DIR_HELP = (
    "Also write a TensorBoard log to this folder: losses, Λ of the winning and losing views, views "
    "per class, final metrics with the settings (needs pip install 'multiview[tensorboard]')."
)


def tracker_option(log_dir: Path | None) -> Reporter | None:
    """The tracker of a ``--log-dir`` option (:func:`multiview.trackers.open_tracker`); without the
    tensorboard package a :class:`typer.BadParameter` saying what to install."""
    from multiview.trackers import TrackerUnavailable, open_tracker

    try:
        return open_tracker(log_dir)
    except TrackerUnavailable as exc:
        raise typer.BadParameter(str(exc), param_hint="--log-dir") from None
