#!/usr/bin/env python
"""Execute the notebooks in notebooks/ top to bottom and report each one's wall time.

Every notebook runs in a fresh kernel, in a temporary copy of notebooks/ (figures and files it
writes land there, never in the repository), with ``MULTIVIEW_NOTEBOOK_SMOKE=1`` so that it runs
its smoke-sized configuration. Exits non-zero if any cell of any notebook raises.

Usage:

    python scripts/run_notebooks.py                  # all notebooks, smoke-sized
    python scripts/run_notebooks.py 01 03            # the notebooks whose names start with 01, 03
    python scripts/run_notebooks.py --full           # the full-size configurations
    python scripts/run_notebooks.py --keep out/      # also write the executed notebooks to out/
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SMOKE_ENV = "MULTIVIEW_NOTEBOOK_SMOKE"


@dataclass
class NotebookRun:
    """The outcome of executing one notebook."""

    name: str
    seconds: float
    ok: bool
    error: str = ""
    images: int = 0
    executed: nbformat.NotebookNode | None = field(default=None, repr=False)


def find_notebooks(selectors: list[str] | None = None, folder: Path = NOTEBOOKS) -> list[Path]:
    """The notebooks of ``folder`` in name order; ``selectors`` keep those whose file name starts
    with one of them (``01``, ``02_learning``) or that they name as a path."""
    every = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if not selectors:
        return every
    chosen = []
    for sel in selectors:
        path = Path(sel)
        if path.suffix == ".ipynb" and path.exists():
            chosen.append(path.resolve())
            continue
        hits = [p for p in every if p.name.startswith(sel)]
        if not hits:
            raise SystemExit(f"no notebook in {folder} starts with {sel!r}")
        chosen += hits
    return list(dict.fromkeys(chosen))


def count_images(nb: nbformat.NotebookNode) -> int:
    return sum(
        1
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    )


def execute(
    path: Path, workdir: Path, smoke: bool = True, timeout: int = 600, kernel: str = "python3"
) -> NotebookRun:
    """Run one notebook in ``workdir`` with a fresh kernel; never raises for a failing cell."""
    nb = nbformat.read(path, as_version=4)
    env_before = os.environ.get(SMOKE_ENV)
    os.environ[SMOKE_ENV] = "1" if smoke else "0"
    client = NotebookClient(
        nb, timeout=timeout, kernel_name=kernel, resources={"metadata": {"path": str(workdir)}}
    )
    t0 = time.perf_counter()
    try:
        client.execute()
        ok, error = True, ""
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        ok, error = False, str(exc)
    finally:
        if env_before is None:
            os.environ.pop(SMOKE_ENV, None)
        else:
            os.environ[SMOKE_ENV] = env_before
    return NotebookRun(path.stem, time.perf_counter() - t0, ok, error, count_images(nb), nb)


def run_all(
    paths: list[Path],
    smoke: bool = True,
    timeout: int = 600,
    keep: Path | None = None,
    kernel: str = "python3",
) -> list[NotebookRun]:
    """Execute ``paths`` one after the other in a temporary copy of their folder."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="multiview-notebooks-") as tmp:
        work = Path(tmp)
        for path in paths:
            shutil.copy2(path, work / path.name)
        for path in paths:
            run = execute(work / path.name, work, smoke=smoke, timeout=timeout, kernel=kernel)
            runs.append(run)
            status = "ok" if run.ok else "FAILED"
            print(f"{run.name:28s} {run.seconds:7.1f} s  {run.images:2d} figures  {status}", flush=True)
            if keep is not None and run.executed is not None:
                keep.mkdir(parents=True, exist_ok=True)
                nbformat.write(run.executed, keep / path.name)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="name prefixes (01, 02_learning) or paths; default: all")
    parser.add_argument("--full", action="store_true", help=f"full-size runs ({SMOKE_ENV}=0)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    parser.add_argument(
        "--keep", type=Path, help="write the executed notebooks (with outputs) to this folder"
    )
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    args = parser.parse_args(argv)

    paths = find_notebooks(args.notebooks)
    if not paths:
        print(f"no notebooks in {NOTEBOOKS}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    runs = run_all(paths, smoke=not args.full, timeout=args.timeout, keep=args.keep, kernel=args.kernel)
    failed = [r for r in runs if not r.ok]
    print(f"{len(runs) - len(failed)} of {len(runs)} notebooks ran in {time.perf_counter() - t0:.1f} s")
    for r in failed:
        print(f"\n--- {r.name} ---\n{r.error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
