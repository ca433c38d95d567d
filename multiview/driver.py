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

Top-level keys of ``results.json``: ``schema``, the protocol's header (``mode`` for CIFAR,
``config``, ``config_hash``, ``environment``, ``data``), one key per stage, the protocol's
summary (the simulator's ``views`` and ``bounds``), ``timing`` (seconds per stage) and
``complete``.
"""

from __future__ import annotations

import io
import pickle
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch

from multiview import stages
from multiview.files import RESULTS_SCHEMA, atomic_write_bytes, atomic_write_text, write_json
from multiview.progress import Reporter
from multiview.settings import Settings
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
    ):
        self.cfg = cfg
        self.out = Path(out_dir) if out_dir is not None else None
        self.resume = resume
        self.reporter = reporter or Reporter()
        self.labels = dict(labels or {})
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

    # --- the skeleton --------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Run the configured stages and what they need; return the results."""
        self.t0 = time.perf_counter()
        header = self.prepare()
        self.timing["data"] = time.perf_counter() - self.t0
        self.results = {"schema": SCHEMA_VERSION, **header}
        self.reporter.run_started(header)
        if self.out is not None:
            atomic_write_text(self.out / "config.toml", self.cfg.to_toml())
        for stage in stages.resolve(self.protocol, self.cfg.protocol.stages):
            key = self.checkpoint_key(stage)
            path = self.out / "stages" / f"{stage}.pt" if self.out is not None and key is not None else None
            saved = load_tensors(path) if self.resume and path is not None and path.exists() else None
            cached = saved is not None and saved.get("config_hash") == key
            if cached:
                part, tensors, seconds = saved["json"], saved["tensors"], saved["seconds"]
            else:
                t = time.perf_counter()
                part, tensors = self.compute(stage)
                seconds = time.perf_counter() - t
                if path is not None:
                    payload = {"config_hash": key, "json": part, "tensors": tensors, "seconds": seconds}
                    save_tensors(path, payload)
            self.results[stage] = part
            self.keep(stage, tensors)
            self.timing[stage] = seconds
            self.reporter.stage_result(stage, part, cached)
            self.reporter.stage_finished(stage, seconds, cached=cached)
            if self.out is not None:
                self.finish(complete=False)
        results = self.finish(complete=True)
        self.reporter.run_finished(results)
        return results

    def finish(self, complete: bool) -> dict[str, Any]:
        """Add the summary, the timing and ``complete``; rewrite ``results.json``."""
        self.results.update(self.summary())
        self.results["timing"] = {
            **self.timing,
            **self.timing_details(),
            "total": time.perf_counter() - self.t0,
        }
        self.results["complete"] = complete
        if self.out is not None:
            write_json(self.out / "results.json", self.results)
            write_tidy(self.out, tidy_frame(self.results, self.labels))
        return self.results
