"""The skeleton every protocol runs: header, ``config.toml``, the stage loop with checkpoints,
``results.json`` after every stage, and the finish.

A protocol (the simulator's in :mod:`multiview.protocol`, CIFAR's in
:mod:`multiview.cifar.protocol`) subclasses :class:`Driver`: it builds its context and the header
of its results (:meth:`Driver.prepare`), and its stage functions, registered with
:func:`implements`, fill in the rest. The driver runs the requested stages and what they need, in
registry order (:mod:`multiview.stages`), telling a :class:`~multiview.progress.Reporter`; with an
output folder it writes ``config.toml`` first, a checkpoint per stage where the protocol keys one
(``stages/<name>.pt``), and ``results.json`` with its tidy table (``tidy.csv``, ``tidy.parquet``:
one row per model × method × stratum, :mod:`multiview.tidy`; ``labels`` are extra columns, a
sweep's swept values) atomically after every stage, so an interrupted run resumes from its last
finished stage.

With ``jobs`` > 1 the stages run side by side in that many worker processes (each builds the
context again from the config, which gives the same data, and reads the stages it needs from
their checkpoints; a stage is computed by the same code on the same inputs, so its numbers are
those of a run in one process): a stage starts as soon as the stages it needs are done, those
that other stages need first.

Top-level keys of ``results.json``: ``schema``, the protocol's header (``mode`` for CIFAR,
``config``, ``config_hash``, ``environment``, ``data``), one key per stage, the protocol's
summary (the simulator's ``views`` and ``bounds``), ``timing`` (seconds per stage) and
``complete``.
"""

from __future__ import annotations

import io
import multiprocessing
import pickle
import queue
import re
import signal
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch

from multiview import stages
from multiview.files import RESULTS_SCHEMA, atomic_write_bytes, atomic_write_text, write_json
from multiview.progress import HOOKS, Reporter
from multiview.settings import Settings
from multiview.threads import threads_per_job
from multiview.tidy import tidy_frame, write_tidy

SCHEMA_VERSION = RESULTS_SCHEMA


# --------------------------------------------------------------------------------------------
# Stage functions
# --------------------------------------------------------------------------------------------

StageFunction = Callable[[Any], tuple[dict[str, Any], dict[str, Any]]]
"""A stage: the protocol's context → (its part of ``results.json``, its tensors for later stages
and its checkpoint)."""
F = TypeVar("F", bound=StageFunction)
_FUNCTIONS: dict[tuple[str, str], StageFunction] = {}


def implements(protocol: str, name: str) -> Callable[[F], F]:
    """Register the decorated function as stage ``name`` of ``protocol`` (a registry row)."""
    stages.get(protocol, name)

    def register(fn: F) -> F:
        _FUNCTIONS[(protocol, name)] = fn
        return fn

    return register


def stage_function(protocol: str, name: str) -> StageFunction:
    """The function registered for a stage (its module must have been imported)."""
    stages.get(protocol, name)
    if (protocol, name) not in _FUNCTIONS:
        raise LookupError(f"the {protocol} stage {name!r} has no function: register one with @implements")
    return _FUNCTIONS[(protocol, name)]


# --------------------------------------------------------------------------------------------
# What a run records
# --------------------------------------------------------------------------------------------


class CheckpointError(ValueError):
    """A checkpoint that cannot be read back as plain data: it holds objects other than tensors,
    numbers, strings, lists and dicts (unpickling those could run any code, so it is refused), or
    the file is damaged."""


def save_tensors(path: str | Path, payload: dict[str, Any]) -> None:
    """Atomically ``torch.save`` a dict of tensors (moved to the CPU) and plain data."""
    buf = io.BytesIO()
    torch.save(_to_cpu(payload), buf)
    atomic_write_bytes(path, buf.getvalue())


def load_tensors(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by :func:`save_tensors`, read with ``torch.load(weights_only=True)``:
    tensors and plain data only. Anything else is a :class:`CheckpointError` naming the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if found is None:
            raise CheckpointError(
                f"{path}: not a readable checkpoint; delete it to compute that part again"
            ) from None
        raise CheckpointError(
            f"{path}: refused: the checkpoint holds an object of type {found.group(1)}, not only tensors "
            "and plain data, and is not unpickled (that could run any code); delete it to compute that "
            "part again"
        ) from None
    except (RuntimeError, EOFError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({first}); delete it to compute that part again"
        ) from None


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


# --------------------------------------------------------------------------------------------
# The skeleton
# --------------------------------------------------------------------------------------------


class Driver:
    """One run of a protocol. A subclass sets ``protocol`` (its registry name) and gives
    :meth:`prepare`; it may key per-stage checkpoints (:meth:`checkpoint_key`), receive each
    stage's tensors (:meth:`keep`) and add to every finish (:meth:`summary`, :meth:`timing_details`).
    """

    protocol: ClassVar[str]

    def __init__(
        self,
        cfg: Settings,
        out_dir: str | Path | None,
        resume: bool,
        reporter: Reporter | None,
        labels: dict[str, Any] | None = None,
        jobs: int = 1,
    ):
        if jobs < 1:
            raise ValueError(f"jobs = {jobs}: the number of worker processes must be 1 or more")
        self.cfg = cfg
        self.out = Path(out_dir) if out_dir is not None else None
        self.resume = resume
        self.reporter = reporter or Reporter()
        self.labels = dict(labels or {})
        self.jobs = jobs
        self.worker_threads = threads_per_job(torch.get_num_threads(), jobs)
        self.header_keys: tuple[str, ...] = ()
        self.context: Any = None
        self.results: dict[str, Any] = {}
        self.timing: dict[str, float] = {}
        self.t0 = 0.0

    # --- what a protocol gives -----------------------------------------------------------------

    def prepare(self) -> dict[str, Any]:
        """Build ``self.context`` (the data on the device) and return the header of the results;
        its time is reported as ``timing.data``."""
        raise NotImplementedError

    def compute(self, stage: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run one stage on the context."""
        return stage_function(self.protocol, stage)(self.context)

    def checkpoint_key(self, stage: str) -> str | None:
        """The key a stage's checkpoint must match to be reused (None: the stage keeps none)."""
        return None

    def keep(self, stage: str, tensors: dict[str, Any]) -> None:
        """Hand a finished (or loaded) stage's tensors to the stages after it."""

    def summary(self) -> dict[str, Any]:
        """Top-level entries every finish adds after the stages (and before ``timing``)."""
        return {}

    def timing_details(self) -> dict[str, Any]:
        """Entries of ``timing`` beside the seconds per stage."""
        return {}

    def worker_driver(self) -> tuple[Callable[..., Driver], tuple[Any, ...]]:
        """A picklable function and its arguments that make this driver again in a worker process
        (without output folder or reporter), for ``jobs`` > 1."""
        raise NotImplementedError(f"the {self.protocol} protocol runs its stages in one process only")

    # --- the skeleton --------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Run the configured stages and what they need; return the results."""
        self.t0 = time.perf_counter()
        header = self.prepare()
        self.timing["data"] = time.perf_counter() - self.t0
        self.results = {"schema": SCHEMA_VERSION, **header}
        self.header_keys = tuple(self.results)
        self.reporter.run_started(header)
        if self.out is not None:
            atomic_write_text(self.out / "config.toml", self.cfg.to_toml())
        todo = stages.resolve(self.protocol, self.cfg.protocol.stages)
        side_by_side = self.jobs > 1 and len(todo) > 1
        waiting = self.record_saved(todo, keep_tensors=not side_by_side)
        if side_by_side:
            self.run_side_by_side(todo, waiting)
        else:
            for stage in waiting:
                part, tensors, seconds = self.compute_and_save(stage, self.stage_folder())
                self.record(stage, part, tensors, seconds, cached=False)
        results = self.finish(complete=True)
        self.reporter.run_finished(results)
        return results

    def stage_folder(self) -> Path | None:
        """Where the stages' checkpoints go (``stages/`` in the output folder; None without one)."""
        return self.out / "stages" if self.out is not None else None

    def compute_and_save(self, stage: str, folder: Path | None) -> tuple[dict[str, Any], Any, float]:
        """Compute ``stage`` (its part of the results, its tensors and its seconds) and write its
        checkpoint, ``<folder>/<name>.pt``, when a folder is given and the stage keeps one."""
        t = time.perf_counter()
        part, tensors = self.compute(stage)
        seconds = time.perf_counter() - t
        key = self.checkpoint_key(stage)
        if folder is not None and key is not None:
            payload = {"config_hash": key, "json": part, "tensors": tensors, "seconds": seconds}
            save_tensors(folder / f"{stage}.pt", payload)
        return part, tensors, seconds

    def saved(self, stage: str, folder: Path | None = None) -> dict[str, Any] | None:
        """The checkpoint of ``stage`` in ``folder`` (default: a resumed run's output folder) when it
        matches the stage's key, else None."""
        folder = folder if folder is not None else (self.stage_folder() if self.resume else None)
        key = self.checkpoint_key(stage)
        path = folder / f"{stage}.pt" if folder is not None and key is not None else None
        if path is None or not path.exists():
            return None
        saved = load_tensors(path)
        return saved if saved.get("config_hash") == key else None

    def record_saved(self, todo: list[str], keep_tensors: bool) -> list[str]:
        """Record the stages of ``todo`` whose checkpoints a resumed run has (their tensors kept for
        the stages after them, or, without ``keep_tensors``, left for the worker processes to
        read from the checkpoints); return the others, still to compute, in order."""
        waiting = []
        for stage in todo:
            saved = self.saved(stage)
            if saved is None:
                waiting.append(stage)
            else:
                tensors = saved["tensors"] if keep_tensors else None
                self.record(stage, saved["json"], tensors, saved["seconds"], cached=True)
        return waiting

    def record(self, stage: str, part: dict[str, Any], tensors: Any, seconds: float, cached: bool) -> None:
        """A finished (or loaded) stage: into the results, to the stages after it, reported, and
        ``results.json`` rewritten."""
        self.results[stage] = part
        if tensors is not None:
            self.keep(stage, tensors)
        self.timing[stage] = seconds
        self.reporter.stage_result(stage, part, cached)
        self.reporter.stage_finished(stage, seconds, cached=cached)
        if self.out is not None:
            self.finish(complete=False)

    def run_side_by_side(self, todo: list[str], waiting: list[str]) -> None:
        """Run the stages ``waiting`` of ``todo`` (the others are done) in ``self.jobs`` worker
        processes (:func:`compute_in_worker`): a stage is handed out once the stages it needs are
        done, stages that others need first, then in registry order. Checkpoints carry the
        tensors between processes (through a temporary folder when the run has no output
        folder). Reports of the workers' trainings reach this process's reporter; a failing stage
        stops the run (the finished ones are kept)."""
        needed = {dep for stage in todo for dep in stages.get(self.protocol, stage).requires}
        done = set(todo) - set(waiting)
        waiting = list(waiting)
        if not waiting:
            return
        with tempfile.TemporaryDirectory(prefix="multiview-stages-") as scratch:
            folder = self.stage_folder() or Path(scratch)
            context = multiprocessing.get_context("spawn")
            reports = context.Queue()
            factory, args = self.worker_driver()
            running: dict[Future, str] = {}
            with ProcessPoolExecutor(
                min(self.jobs, len(waiting)),
                context,
                initializer=start_worker,
                initargs=(reports, self.worker_threads),
            ) as pool:
                try:
                    while waiting or running:
                        ready = [s for s in waiting if set(stages.get(self.protocol, s).requires) <= done]
                        ready.sort(key=lambda s: (s not in needed, todo.index(s)))
                        for stage in ready[: self.jobs - len(running)]:
                            waiting.remove(stage)
                            future = pool.submit(
                                compute_in_worker, factory, args, self.cfg.config_hash(), folder, stage
                            )
                            running[future] = stage
                        finished, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                        forward_reports(reports, self.reporter)
                        for future in finished:
                            stage = running.pop(future)
                            part, seconds = future.result()
                            self.record(stage, part, None, seconds, cached=False)
                            done.add(stage)
                except BaseException:  # Ctrl-C or a failed stage: the workers stop now
                    for process in getattr(pool, "_processes", {}).values():
                        process.terminate()
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
                forward_reports(reports, self.reporter)

    def finish(self, complete: bool) -> dict[str, Any]:
        """Add the summary, the timing and ``complete``; rewrite ``results.json``."""
        order = stages.names(self.protocol)  # the header, then the stages in registry order
        header = {key: value for key, value in self.results.items() if key in self.header_keys}
        self.results = {**header, **{stage: self.results[stage] for stage in order if stage in self.results}}
        self.results.update(self.summary())
        self.results["timing"] = {
            **{key: self.timing[key] for key in ("data", *order) if key in self.timing},
            **self.timing_details(),
            "total": time.perf_counter() - self.t0,
        }
        self.results["complete"] = complete
        if self.out is not None:
            write_json(self.out / "results.json", self.results)
            write_tidy(self.out, tidy_frame(self.results, self.labels))
        return self.results


# --------------------------------------------------------------------------------------------
# Stages in worker processes (``jobs`` > 1)
# --------------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}
"""A worker process's state: its report queue, its driver and the stages that driver holds."""


class QueueReporter(Reporter):
    """A worker's reporter: every report goes, as (hook, arguments), onto a queue that the main
    process reads (:func:`forward_reports`)."""

    def __init__(self, reports: Any) -> None:
        self.reports = reports


def _to_queue(name: str) -> Any:
    def put(self: QueueReporter, *args: Any) -> None:
        self.reports.put((name, args))

    put.__name__ = name
    return put


for _hook in HOOKS:
    setattr(QueueReporter, _hook, _to_queue(_hook))


def forward_reports(reports: Any, reporter: Reporter) -> None:
    """Hand the reports waiting on ``reports`` to ``reporter``, in order."""
    while True:
        try:
            name, args = reports.get_nowait()
        except queue.Empty:
            return
        getattr(reporter, name)(*args)


def start_worker(reports: Any, threads: int) -> None:
    """A worker process's start: its report queue and its torch threads; Ctrl-C is left to the
    main process, which stops the workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    _WORKER.clear()
    _WORKER["reports"] = reports


def compute_in_worker(
    factory: Callable[..., Driver], args: tuple[Any, ...], config_hash: str, folder: Path, stage: str
) -> tuple[dict[str, Any], float]:
    """Compute ``stage`` in this worker: the driver made once per process (its config must hash
    to ``config_hash``), the stages it needs read from their checkpoints in ``folder`` (each must
    match its key), the stage's checkpoint written there. Returns its part of the results and its
    seconds."""
    driver = _WORKER.get("driver")
    if driver is None or _WORKER.get("config_hash") != config_hash:
        driver = factory(*args)
        if driver.cfg.config_hash() != config_hash:
            raise RuntimeError("a worker process rebuilt another config than the run's")
        driver.reporter = QueueReporter(_WORKER["reports"]) if "reports" in _WORKER else Reporter()
        driver.prepare()
        _WORKER.update(driver=driver, config_hash=config_hash, held=set())
    held: set[str] = _WORKER["held"]
    for dep in stages.resolve(driver.protocol, [stage]):
        if dep != stage and dep not in held:
            saved = driver.saved(dep, folder)
            if saved is None:
                missing = f"{folder / dep}.pt: the checkpoint of {dep} is not this run's (or is missing)"
                raise RuntimeError(missing)
            driver.keep(dep, saved["tensors"])
            held.add(dep)
    part, tensors, seconds = driver.compute_and_save(stage, folder)
    driver.keep(stage, tensors)
    held.add(stage)
    return part, seconds
