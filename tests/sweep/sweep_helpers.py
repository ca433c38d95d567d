"""Shared pieces of the sweep tests: tiny specs (the smoke preset, cut down) and CLI runners."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from multiview.cli import app

# One unit of the smoke preset cut down to a fraction of a second on one CPU thread.
TINY_SET = """
[sweep.set]
"data.n_test" = 500
"train.max_steps" = 100
"""


def spec_text(
    out: Path,
    parameters: str,
    seeds: str = "[0]",
    stages: str = '["single", "ensemble"]',
    fixed: str = TINY_SET,
    local: str = "workers = 1\nthreads = 1",
    slurm: str = "",
    name: str = "tiny",
) -> str:
    """A sweep spec on the smoke preset writing to ``out``."""
    text = f"""
[sweep]
name = "{name}"
preset = "smoke"
stages = {stages}
seeds = {seeds}
out = "{out}"
{fixed}
[sweep.parameters]
{parameters}

[local]
{local}
"""
    if slurm:
        text += f"\n[slurm]\n{slurm}\n"
    return text


def write_spec(path: Path, *args, **kwargs) -> Path:
    path.write_text(spec_text(*args, **kwargs))
    return path


def run_cli(*args: str):
    """Run ``multiview ARGS`` in this process; returns typer's result (exit_code, output)."""
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def cli_command(*args: str) -> list[str]:
    """``multiview ARGS`` as a subprocess command line with this interpreter."""
    return [sys.executable, "-c", "from multiview.cli import app; app()", *map(str, args)]


def run_subprocess(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cli_command(*args), capture_output=True, text=True, timeout=timeout)


def flat(text: str) -> str:
    """``text`` with every run of whitespace (line breaks of a narrow terminal included) as one space."""
    return " ".join(text.split())
