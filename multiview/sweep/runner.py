"""Running one unit: the function a local worker or a SLURM job executes.

:func:`run_unit` takes the unit's lock, skips it when its result is already stored, runs the
protocol into ``units/<key>/`` with ``resume`` (finished stages of an interrupted attempt are
loaded, not recomputed; a CIFAR unit's finished models too, and its model in training from its
last saved epoch), and records the outcome in ``unit.json`` and ``events.jsonl``.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from multiview.device import resolve_device
from multiview.settings import ConfigError
from multiview.sweep.spec import Unit
from multiview.sweep.store import DONE, FAILED, RUNNING, SweepStore
from multiview.threads import resolve_threads, sleep_when_idle
from multiview.tidy import cell

WHERE = ("host", "pid", "device", "backend", "slurm_job")
"""What ``unit.json`` says of where an attempt ran."""


class UnitFailed(RuntimeError):
    """A unit's code raised; the message carries the unit, its error and its traceback."""


@dataclass
class Outcome:
    """What happened to one unit in this attempt."""

    key: str
    state: str  # done, failed, busy (running elsewhere), cached (was already done)
    seconds: float = 0.0
    error: str = ""
    traceback: str = ""
    device: str = ""


def run_unit(
    root: str | Path,
    unit: Unit,
    device: str = "auto",
    threads: int = 0,
    keep_stages: bool = True,
    raise_on_error: bool = False,
    backend: str = "local",
) -> Outcome:
    """Run ``unit`` into the sweep folder ``root`` unless it is already done there.

    ``threads`` sets torch's CPU threads (0: the policy of :mod:`multiview.threads`, which inside
    a SLURM allocation is its cores). With
    ``raise_on_error`` a failure is re-raised as :class:`UnitFailed` after it is recorded (a SLURM
    job then ends FAILED); otherwise it is returned.
    """
    sleep_when_idle()
    import torch

    store = SweepStore(root)
    with store.lock(unit.key) as taken:
        if not taken:
            return Outcome(unit.key, "busy")
        if store.is_done(unit.key):
            info = store.info(unit.key)
            if info.get("state") != DONE:  # an attempt stopped between its results and its record
                where = {k: v for k, v in info.items() if k in ("started", *WHERE)}
                store.write_info(unit, DONE, finished=time.time(), **where)
                store.log_event("done", unit.key, recorded_later=True)
            return Outcome(unit.key, "cached")
        previous_threads = torch.get_num_threads()
        step = getattr(unit.config, "step_elements", None)  # the simulator's configs: its size
        torch.set_num_threads(resolve_threads(threads, step() if step is not None else None))
        try:
            return _attempt(store, unit, device, keep_stages, raise_on_error, backend)
        finally:
            torch.set_num_threads(previous_threads)


def _attempt(
    store: SweepStore, unit: Unit, device: str, keep_stages: bool, raise_on_error: bool, backend: str
) -> Outcome:
    """One attempt at ``unit`` (its lock held): record the start, run, record the outcome."""
    try:
        dev = str(resolve_device(device, "device"))
    except ConfigError:
        dev = device  # the run below fails on it, and the failure is recorded with the unit
    attempts = store.info(unit.key).get("attempts", 0) + 1
    started = time.time()
    where = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "device": dev,
        "backend": backend,
        "slurm_job": slurm_job_id(),
    }
    store.write_info(
        unit,
        RUNNING,
        attempts=attempts,
        started=started,
        first_started=store.info(unit.key).get("first_started", started),
        **where,
    )
    store.log_event("start", unit.key, attempt=attempts, device=dev, backend=backend)
    t0 = time.perf_counter()
    try:
        run_protocol_of(unit, dev, store.unit_dir(unit.key))
    except Exception as exc:
        seconds = time.perf_counter() - t0
        tb = traceback.format_exc()
        error = f"{type(exc).__name__}: {exc}"
        store.write_info(
            unit,
            FAILED,
            attempts=attempts,
            started=started,
            seconds=seconds,
            error=error,
            traceback=tb,
            **where,
        )
        store.log_event("failed", unit.key, seconds=seconds, error=error)
        if raise_on_error:
            where_log = store.info_path(unit.key)
            raise UnitFailed(f"unit {unit.key} ({unit.label()}) failed: {error} (see {where_log})") from exc
        return Outcome(unit.key, FAILED, seconds, error, tb, dev)
    seconds = time.perf_counter() - t0
    if not keep_stages:
        shutil.rmtree(store.unit_dir(unit.key) / "stages", ignore_errors=True)
    store.write_info(
        unit, DONE, attempts=attempts, started=started, seconds=seconds, finished=time.time(), **where
    )
    store.log_event("done", unit.key, seconds=seconds)
    return Outcome(unit.key, DONE, seconds, device=dev)


def run_protocol_of(unit: Unit, device: str, out: Path) -> None:
    """Run ``unit``'s protocol (the simulator's, or CIFAR's for a CIFAR config) into ``out``,
    resuming what an earlier attempt left there; its swept values label its tidy table."""
    from multiview.cifar.config import CifarConfig

    labels = {key: cell(value) for key, value in unit.params.items()}
    if isinstance(unit.config, CifarConfig):
        from multiview.cifar.protocol import run_cifar

        run_cifar(unit.config, device, out, resume=True, labels=labels)
    else:
        from multiview.protocol import run_protocol

        run_protocol(unit.config, device, out, resume=True, labels=labels)


def slurm_job_id() -> str | None:
    """The SLURM task this process runs in (``<array>_<task>`` in a job array), or None."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID")
