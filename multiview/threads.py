"""How many CPU threads torch uses: one policy for every command, applied before torch is imported.

torch's default is one OpenMP thread per core, and its idle threads spin while they wait for
work. On a machine where other processes keep cores busy, the spinning threads and the other
processes take turns on the same cores: on this project's 2-core machine with one core busy, the
``smoke`` protocol took 1.8 s with one thread and 31 s with two, ``default --only single`` 4.0 s
against 73 s (README, "Threads"). The policy:

* ``--threads N`` (N ≥ 1) uses N threads;
* ``--threads 0`` (the default) uses the cores this process may use (its affinity mask, or SLURM's
  ``SLURM_CPUS_PER_TASK``) less the cores other processes keep busy (the 1-minute load average,
  rounded; not counted inside a SLURM allocation, whose cores are the job's own), at least one;
* idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``, unless the variable
  is set already), so that a count that turns out too high when another job starts costs little
  (two threads with one core busy: 2.4 s, not 31 s).

This module imports no torch; :func:`use_threads` imports it after setting the wait policy (which
OpenMP reads once, when torch loads it).
"""

from __future__ import annotations

import os

WAIT_POLICY = "PASSIVE"


def cpu_count() -> int:
    """CPU cores this process may use (SLURM's allocation, the affinity mask, or all)."""
    slurm = os.environ.get("SLURM_CPUS_PER_TASK")
    if slurm and slurm.isdigit():
        return max(1, int(slurm))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def busy_cores() -> int:
    """Cores other processes keep busy now: the 1-minute load average, rounded (0 inside a SLURM
    allocation, or where the system does not say)."""
    if os.environ.get("SLURM_CPUS_PER_TASK"):
        return 0
    try:
        return round(os.getloadavg()[0])
    except (AttributeError, OSError):  # pragma: no cover - not Unix
        return 0


def default_threads() -> int:
    """The threads of ``--threads 0``: the cores this process may use less the busy ones, ≥ 1."""
    cores = cpu_count()
    return max(1, min(cores, cores - busy_cores()))


def resolve_threads(threads: int) -> int:
    """``threads`` when positive, else :func:`default_threads`."""
    return threads if threads > 0 else default_threads()


def sleep_when_idle() -> None:
    """Let idle OpenMP threads sleep rather than spin (``OMP_WAIT_POLICY=PASSIVE``, unless set):
    for this process when torch is not imported yet, and for the processes it starts."""
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)


def use_threads(threads: int = 0) -> int:
    """Set torch's CPU threads by the policy (``threads`` > 0: exactly that many) and return the
    count. Call it before torch is first imported for the wait policy to take effect."""
    sleep_when_idle()
    n = resolve_threads(threads)
    import torch

    torch.set_num_threads(n)
    return n
