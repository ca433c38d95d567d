"""Pieces shared by the command lines (``multiview simulate``, ``multiview cifar``, ``multiview
sweep``, ``multiview plot``): the consoles, errors, the ``--device``, ``--threads`` and
``--log-dir`` options, the checks of an output folder, and a run with its progress display (and
a tracker) and its named exits
(:func:`run_command`: Ctrl-C names the command that resumes; progress bars are in
:mod:`multiview.progress`).

Every refusal ends the same way (:func:`fail`): ``error: <what is wrong and what is allowed>`` on
stderr and exit status 2, before any computation starts. torch is imported on use, so importing
this module (and every check here) stays cheap.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from multiview.settings import ConfigError, Settings, differences

if TYPE_CHECKING:
    import torch
    from rich.console import Console

    from multiview.progress import Reporter

T = TypeVar("T")


PIPED_WIDTH = 140
"""Columns of the tables when the output is not a terminal (a log file, a pipe) and ``COLUMNS``
is unset: wide enough that the result tables do not wrap."""

INTERRUPTED = 130
"""The exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it."""


def make_console(stderr: bool = False) -> Console:
    """A rich console (on stderr with ``stderr``); output to a file or a pipe gets ``PIPED_WIDTH``
    columns, not rich's 80."""
    from rich.console import Console

    console = Console(stderr=stderr)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=stderr, width=PIPED_WIDTH)
    return console


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (2: the input was refused)."""
    from rich.text import Text

    make_console(stderr=True).print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)
    raise typer.Exit(code)


def note(message: str) -> None:
    """Print ``message`` on stderr (remarks that are not results: how to resume, what was skipped)."""
    from rich.text import Text

    make_console(stderr=True).print(Text(message), soft_wrap=True)


# --------------------------------------------------------------------------------------------
# Options every compute command shares
# --------------------------------------------------------------------------------------------


def parse_device(value: str) -> str:
    """A ``--device`` value as given, once it is one of the names :data:`DeviceOpt` lists."""
    from multiview.device import check_device

    try:
        check_device("--device", value)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


DeviceOpt = Annotated[
    str,
    typer.Option(
        "--device",
        parser=parse_device,
        metavar="[auto|cpu|cuda[:N]]",
        help="Where to compute: auto (CUDA when present, else the CPU), cpu, cuda or cuda:N.",
    ),
]

THREADS_HELP = (
    "CPU threads for torch. 0 (the default): the cores this process may use less those other "
    "processes keep busy (1-minute load average), at least 1; idle threads sleep rather than spin "
    "(OpenMP wait policy PASSIVE). On a busy machine 1 is the fastest."
)
ThreadsOpt = Annotated[int, typer.Option("--threads", min=0, help=THREADS_HELP)]
"""``--threads`` of ``simulate`` and ``cifar`` (and, per unit, of ``sweep``): one definition."""

JOBS_HELP = (
    "Processes that run stages side by side (a stage starts once the stages it needs are done), "
    "the threads shared out among them; the numbers are those of one process. 0 (the default): "
    "as many as the threads allow, up to 4, one for a small problem (under 2^18 unit-patch pairs "
    "a step, e.g. smoke) or on a GPU."
)
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", min=0, help=JOBS_HELP)]
"""``--jobs`` of ``simulate``."""


def device_option(name: str) -> torch.device:
    """The device of a ``--device`` option (:func:`multiview.device.resolve_device`); a name torch
    cannot use here (CUDA on a machine without it) is refused with :func:`fail`."""
    from multiview.device import resolve_device

    try:
        return resolve_device(name)
    except ConfigError as exc:
        fail(str(exc))


# --------------------------------------------------------------------------------------------
# The output folder
# --------------------------------------------------------------------------------------------

RESUMABLE_CHANGES = ("protocol.stages",)
"""Settings a resumed run may change: which stages run (finish the rest later)."""


def writable_folder(out: Path, option: str = "--out") -> None:
    """Refuse (:func:`fail`) a folder that cannot be written: a path through a file, an existing
    file, or a folder where no file can be created, naming ``option``. Folders it creates to find
    out are removed again (the command creates them when it writes)."""
    for parent in [out, *out.parents]:
        if parent.exists():
            if not parent.is_dir():
                where = "" if parent == out else f": {parent} is a file"
                fail(f"{option} {out} is not a folder{where}; give a folder to write into")
            break
    created = [p for p in [out, *out.parents] if not p.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as exc:
        fail(f"{option} {out} cannot be written ({exc.strerror or exc}); give a folder you can write to")
    finally:
        for folder in created:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()


def check_out_folder(out: Path, cfg: Settings, overwrite: bool = False) -> None:
    """Refuse (:func:`fail`) an output folder that cannot be written (:func:`writable_folder`), or
    that holds a run of another config (unless ``overwrite``): the message names the first keys
    that differ."""
    writable_folder(out)
    saved = out / "config.toml"
    if overwrite or not saved.exists():
        return
    start_over = (
        "add --overwrite to replace that run (with --resume, stages whose settings did not change "
        "are reused), or choose another --out"
    )
    try:
        old = type(cfg).from_dict(tomllib.loads(saved.read_text())).identity()
    except (OSError, ValueError) as exc:  # ConfigError, TOML and UTF-8 errors are ValueErrors
        fail(f"--out {out} holds a config.toml this command cannot read ({exc}): {start_over}")
    new = type(cfg).from_dict(tomllib.loads(cfg.to_toml())).identity()
    changed = [d for d in differences(old, new) if d[0] not in RESUMABLE_CHANGES]
    if changed:
        shown = ", ".join(f"{key} ({a!r} there, {b!r} now)" for key, a, b in changed[:3])
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        fail(f"--out {out} holds a run of another config: {shown}{more}. To run here, {start_over}")


# --------------------------------------------------------------------------------------------
# Interrupted runs
# --------------------------------------------------------------------------------------------


def command_line(ctx: typer.Context, changes: dict[str, Any] | None = None) -> str:
    """The command line that ran ``ctx``'s command, from the options given on it, with ``changes``
    (option → value; True for a flag; replacing a given value) added: ``multiview simulate
    --preset smoke --out runs/x --resume``."""
    from typer._click.core import ParameterSource

    changes = dict(changes or {})
    words = ["multiview", ctx.info_name or ""]
    for param in ctx.command.params:
        name = param.opts[0] if param.opts else ""
        if name in changes:
            value = changes.pop(name)
        elif ctx.get_parameter_source(param.name or "") in (
            ParameterSource.COMMANDLINE,
            ParameterSource.ENVIRONMENT,
        ):
            value = ctx.params.get(param.name or "")
        else:
            continue
        if param.param_type_name == "argument":
            words.append(str(value))
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is True:
                words.append(name)
            elif item not in (False, None):
                words += [name, str(getattr(item, "value", item))]
    for name, value in changes.items():
        words += [name] if value is True else [name, str(value)]
    return shlex.join(words)


def out_of_memory(exc: BaseException) -> str | None:
    """What ``exc`` says when the machine (or the GPU) ran out of memory (its first line, or its
    type), else None."""
    text = str(exc).lower()
    short = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    said = ("out of memory", "not enough memory", "can't allocate memory")
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and any(s in text for s in said)):
        return short
    return None


def run_command(
    ctx: typer.Context,
    out: Path,
    console: Console,
    quiet: bool,
    run: Callable[[Reporter], T],
    memory_hint: str,
    tracker: Reporter | None = None,
) -> T:
    """``run(reporter)`` with a progress display on ``console`` (none when ``quiet``) and
    ``tracker`` (:func:`tracker_option`) as its reporter; what a machine can do to a run ends in
    a named exit: Ctrl-C (130, naming the command that resumes into ``out``), a file that cannot
    be written or read (2), memory that runs out (2, with ``memory_hint``). Other errors pass
    through."""
    from multiview.progress import Reporters, RichReporter

    try:
        if quiet:
            return run(Reporters(tracker))
        with RichReporter(console) as bars:
            return run(Reporters(bars, tracker))
    except KeyboardInterrupt:
        interrupted(ctx, out)
    except OSError as exc:
        fail(f"{exc.filename or out}: {exc.strerror or exc}")
    except (MemoryError, RuntimeError) as exc:
        if not (what := out_of_memory(exc)):
            raise
        fail(f"out of memory ({what}): {memory_hint}")


def interrupted(ctx: typer.Context, out: Path) -> NoReturn:
    """Ctrl-C during a run: say what is kept and the command that resumes it; exit 130."""
    again = command_line(ctx, {"--out": out, "--resume": True})
    note(f"interrupted: finished stages are saved in {out}. Resume with:\n  {again}")
    raise typer.Exit(INTERRUPTED)


LOG_DIR_HELP = (
    "Also write a TensorBoard log to this folder: losses, Λ of the winning and losing views, views "
    "per class, final metrics with the settings (needs the tensorboard package: pip install tensorboard)."
)


def tracker_option(log_dir: Path | None) -> Reporter | None:
    """The tracker of a ``--log-dir`` option (:func:`multiview.trackers.open_tracker`); without the
    tensorboard package a refusal (:func:`fail`) saying what to install."""
    from multiview.trackers import TrackerUnavailable, open_tracker

    try:
        return open_tracker(log_dir)
    except TrackerUnavailable as exc:
        fail(str(exc))
