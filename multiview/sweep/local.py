"""The local backend: units one after another, or in a process pool sized to the machine.

With GPUs, one worker per GPU (each worker owns one device); on the CPU, one worker per core with
one torch thread each (several small units in parallel use the cores better than one unit with
several threads). ``[local] workers``, ``threads`` and ``device`` override this. One worker runs
the units in this process; more use a ``spawn`` process pool whose workers die with the parent.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from multiview.device import resolve_device
from multiview.sweep.plan import Problem, SweepReport
from multiview.sweep.runner import Outcome, run_unit
from multiview.sweep.spec import LocalOptions, Unit
from multiview.threads import cpu_count

OnOutcome = Callable[[Unit, Outcome], None]


@dataclass
class Layout:
    """How the local backend uses the machine: one device per worker, threads per worker."""

    devices: list[str]
    threads: int

    @property
    def workers(self) -> int:
        return len(self.devices)


def layout(options: LocalOptions, n_units: int) -> Layout:
    """Workers and devices: one per GPU when ``device`` is auto/cuda and GPUs exist, else one per core."""
    import torch

    device = str(resolve_device(options.device, "local.device"))
    cores = cpu_count()
    if device.startswith("cuda"):
        gpus = [device] if ":" in device else [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        workers = options.workers or len(gpus)
        devices = [gpus[i % len(gpus)] for i in range(workers)]
    else:
        workers = options.workers or cores
        devices = ["cpu"] * workers
    devices = devices[: max(1, min(len(devices), n_units))]
    threads = options.threads or max(1, cores // len(devices))
    return Layout(devices, threads)


def run_local(
    root: str | Path,
    units: list[Unit],
    options: LocalOptions,
    keep_stages: bool = True,
    on_outcome: OnOutcome | None = None,
) -> SweepReport:
    """Run ``units`` into the sweep folder ``root``; ``on_outcome`` is called as each finishes."""
    report = SweepReport(total=len(units))
    if not units:
        return report
    lay = layout(options, len(units))

    def record(unit: Unit, out: Outcome) -> None:
        _record(report, unit, out, root)
        if on_outcome is not None:
            on_outcome(unit, out)

    if lay.workers == 1:
        for unit in units:
            record(unit, run_unit(root, unit, lay.devices[0], lay.threads, keep_stages))
        return report

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    for dev in lay.devices:
        queue.put(dev)
    pool = ProcessPoolExecutor(
        lay.workers, mp_context=ctx, initializer=_init_worker, initargs=(queue, lay.threads)
    )
    try:
        futures = {pool.submit(_run_in_worker, str(root), u, keep_stages): u for u in units}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                unit = futures[fut]
                try:
                    out = fut.result()
                except Exception as exc:  # the worker died (killed, out of memory): the unit stays pending
                    out = Outcome(unit.key, "crashed", error=f"{type(exc).__name__}: {exc}")
                record(unit, out)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return report


def _record(report: SweepReport, unit: Unit, out: Outcome, root: str | Path) -> None:
    if out.state == "done":
        report.computed.append(unit.key)
        report.seconds[unit.key] = out.seconds
    elif out.state == "cached":
        report.skipped_done.append(unit.key)
    elif out.state == "busy":
        report.busy.append(unit.key)
    else:
        log = out.traceback or out.error
        path = Path(root) / "units" / unit.key / "unit.json"
        report.problems.append(Problem(unit, out.state, out.error, log, str(path)))


# --------------------------------------------------------------------------------------------
# Worker side
# --------------------------------------------------------------------------------------------

_WORKER: dict[str, object] = {}


def _init_worker(queue, threads: int) -> None:  # pragma: no cover - runs in the pool's processes
    """Take one device for this worker; die with the parent (``PR_SET_PDEATHSIG``) on Linux."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    _WORKER["device"] = queue.get()
    _WORKER["threads"] = threads


def _run_in_worker(root: str, unit: Unit, keep_stages: bool) -> Outcome:  # pragma: no cover - in a worker
    return run_unit(root, unit, str(_WORKER["device"]), int(_WORKER["threads"]), keep_stages)  # type: ignore[arg-type]
