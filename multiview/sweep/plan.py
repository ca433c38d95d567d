"""Which units a sweep invocation runs, and what it reports at the end.

:func:`plan` sorts a spec's units by their stored state: done units are skipped, failed units are
skipped unless ``retry_failed``, units another process is computing right now are left to it, and
everything else runs. :class:`SweepReport` is the summary both backends return.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from multiview.sweep.spec import SweepSpec, Unit
from multiview.sweep.store import DONE, FAILED, RUNNING, SweepStore


@dataclass
class Plan:
    """The spec's units split by what this invocation does with them."""

    units: list[Unit]
    run: list[Unit] = field(default_factory=list)
    done: list[Unit] = field(default_factory=list)
    failed: list[Unit] = field(default_factory=list)
    running: list[Unit] = field(default_factory=list)


@dataclass
class Problem:
    """A unit that did not finish: why, and the log lines that say so."""

    unit: Unit
    state: str  # failed (its code raised), or the SLURM state (CANCELLED, TIMEOUT, NODE_FAIL, ...)
    error: str
    log: str = ""
    log_path: str = ""


@dataclass
class SweepReport:
    """The outcome of one ``multiview sweep`` invocation."""

    total: int
    computed: list[str] = field(default_factory=list)
    skipped_done: list[str] = field(default_factory=list)
    skipped_failed: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    submitted: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def plan(spec: SweepSpec, store: SweepStore, retry_failed: bool = False, record: bool = True) -> Plan:
    """Record the spec in the store (unless ``record`` is false: a dry run writes nothing) and
    decide, unit by unit, whether to run it."""
    units = spec.units()
    if record:
        store.write_plan(spec.source, spec.base_dir, units)
    p = Plan(units)
    for u in units:
        state = store.state(u.key)
        if state == DONE:
            p.done.append(u)
        elif state == FAILED and not retry_failed:
            p.failed.append(u)
        elif state == RUNNING:
            p.running.append(u)
        else:
            p.run.append(u)
    return p
