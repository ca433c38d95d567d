"""Pieces shared by the command lines (``multiview simulate``, ``multiview cifar``, ``multiview
sweep``, ``multiview plot``): the console, the ``--device`` option and the progress display.

torch and rich's progress module are imported on use, so importing this module stays cheap.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    import torch
    from rich.console import Console
    from rich.progress import Progress


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


def resolve_device(device: str) -> torch.device:
    """``auto``: CUDA when present, else the CPU; ``cpu``, ``cuda`` or ``cuda:N`` as given (a device
    torch does not know, or CUDA where there is none, is a :class:`typer.BadParameter`)."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise typer.BadParameter(f"--device {device!r}: use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise typer.BadParameter(f"--device {device}: CUDA is not available on this machine")
    return dev


def progress_display(console: Console, transient: bool) -> Progress:
    """Progress bars with a bold description, done / total, a free ``info`` field (pass
    ``info=...`` to ``add_task``) and the elapsed time; ``transient`` ones vanish when stopped."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )
