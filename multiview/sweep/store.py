"""The sweep's result store: one folder per unit, keyed by its config hash; nothing is lost.

Layout of a sweep folder::

    spec.toml                 the spec as given (re-run with ``multiview sweep <sweep folder>``)
    plan.json                 every unit planned so far: key, master seed, swept values
    events.jsonl              one line per unit started / done / failed (append-only)
    units/<key>/unit.json     the unit's state, swept values, config, host, error and traceback
    units/<key>/results.json  the protocol's results (written atomically; ``complete`` when done)
    units/<key>/config.toml   the resolved config
    units/<key>/stages/*.pt   per-stage checkpoints, reused when an interrupted unit is re-run
    slurm/                    submitit's folder (job scripts, logs, pickles) and jobs.json

A unit is *done* when its ``results.json`` says ``complete`` and carries the unit's config hash:
that file is written by ``os.replace``, so a crash or ``kill -9`` leaves either the old file or the
new one. A unit is *failed* when its code raised (``unit.json`` keeps the traceback); it is re-run
only with ``--retry-failed``. Anything else (never started, killed, cancelled, timed out, lost
with its node) is *pending* and is re-run by the next ``multiview sweep``. While a unit runs its
process holds an exclusive ``flock`` on ``units/<key>/lock``, so two sweeps never compute it twice
at once; the kernel drops the lock when the process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from multiview.files import FileFormatError, atomic_write_text, read_json, write_json

DONE, FAILED, RUNNING, PENDING = "done", "failed", "running", "pending"


class SweepStore:
    """Read and write one sweep folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # --- paths -------------------------------------------------------------------------------

    @property
    def units_dir(self) -> Path:
        return self.root / "units"

    @property
    def slurm_dir(self) -> Path:
        return self.root / "slurm"

    @property
    def events_path(self) -> Path:
        return self.root / "events.jsonl"

    def unit_dir(self, key: str) -> Path:
        return self.units_dir / key

    def results_path(self, key: str) -> Path:
        return self.unit_dir(key) / "results.json"

    def info_path(self, key: str) -> Path:
        return self.unit_dir(key) / "unit.json"

    # --- the plan ----------------------------------------------------------------------------

    def is_sweep(self) -> bool:
        return (self.root / "spec.toml").exists()

    def write_plan(self, spec_text: str, spec_dir: Path, units: list[Any]) -> None:
        """Save the spec and add ``units`` to ``plan.json`` (units of earlier specs stay listed);
        give each new unit a ``unit.json`` in state pending."""
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.root / "spec.toml", spec_text)
        plan = self.read_plan()
        known = {u["key"] for u in plan["units"]}
        for u in units:
            if u.key not in known:
                plan["units"].append({"key": u.key, "seed": u.seed, "params": u.params})
            if not self.info_path(u.key).exists():
                self.write_info(u, state=PENDING)
        plan["spec_dir"] = str(spec_dir.resolve())
        plan["swept_keys"] = _union(plan.get("swept_keys", []), [k for u in units for k in u.params])
        write_json(self.root / "plan.json", plan)

    def read_plan(self) -> dict[str, Any]:
        """``plan.json`` (empty when absent); a damaged one is a :class:`~multiview.files.FileFormatError`."""
        path = self.root / "plan.json"
        if not path.exists():
            return {"units": [], "swept_keys": []}
        plan = read_json(path)
        if not isinstance(plan, dict) or not isinstance(plan.get("units"), list):
            raise FileFormatError(f"{path} is not a sweep's plan.json (no list of units)")
        return plan

    def spec_dir(self) -> Path:
        """The folder the spec was loaded from (its relative paths are relative to it)."""
        return Path(self.read_plan().get("spec_dir", self.root))

    # --- unit state --------------------------------------------------------------------------

    def is_done(self, key: str) -> bool:
        """The unit's results are complete and belong to its config."""
        try:
            res = read_json(self.results_path(key))
        except (OSError, ValueError):  # absent, unreadable, not JSON
            return False
        return isinstance(res, dict) and bool(res.get("complete")) and res.get("config_hash") == key

    def info(self, key: str) -> dict[str, Any]:
        """``unit.json`` (empty when absent or unreadable)."""
        try:
            info = read_json(self.info_path(key))
        except (OSError, ValueError):  # absent, unreadable, not JSON
            return {}
        return info if isinstance(info, dict) else {}

    def state(self, key: str) -> str:
        """done, failed, running (another process holds its lock) or pending."""
        if self.is_done(key):
            return DONE
        if self.info(key).get("state") == FAILED:
            return FAILED
        if self.is_locked(key):
            return RUNNING
        return PENDING

    def write_info(self, unit: Any, state: str, **extra: Any) -> None:
        """Write ``unit.json``: the unit's identity and config, its state, and ``extra`` fields
        (the attempt count and the first start time are carried over)."""
        old = self.info(unit.key)
        record = {
            "key": unit.key,
            "seed": unit.seed,
            "params": unit.params,
            "state": state,
            "attempts": old.get("attempts", 0),
            "updated": time.time(),
            "config": unit.config.to_dict(),
        }
        record.update({k: v for k, v in old.items() if k in ("first_started",)})
        record.update(extra)
        write_json(self.info_path(unit.key), record)

    def keys(self) -> list[str]:
        """Every unit folder present (planned or run), sorted."""
        if not self.units_dir.exists():
            return []
        return sorted(p.name for p in self.units_dir.iterdir() if p.is_dir())

    # --- events ------------------------------------------------------------------------------

    def log_event(self, event: str, key: str, **fields: Any) -> None:
        """Append one JSON line (``O_APPEND``, one ``write``: whole lines even from many processes)."""
        self.root.mkdir(parents=True, exist_ok=True)
        line = json.dumps(
            {
                "event": event,
                "key": key,
                "time": time.time(),
                "host": socket.gethostname(),
                "pid": os.getpid(),
                **fields,
            }
        )
        fd = os.open(self.events_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def events(self) -> list[dict[str, Any]]:
        if not self.events_path.exists():
            return []
        out = []
        for line in self.events_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
        return out

    # --- locks -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[bool]:
        """Try to take the unit's lock without waiting; yields whether it was taken."""
        path = self.unit_dir(key) / "lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            except OSError:  # a file system without flock: run unlocked
                yield True
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def is_locked(self, key: str) -> bool:
        path = self.unit_dir(key) / "lock"
        if not path.exists():
            return False
        with self.lock(key) as taken:
            return not taken


def _union(a: list[str], b: list[str]) -> list[str]:
    out = list(a)
    for x in b:
        if x not in out:
            out.append(x)
    return out
