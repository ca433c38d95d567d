"""How many CPU threads torch uses: one policy for every command, applied before torch is imported.

torch's default is one OpenMP thread per core, and its idle threads spin while they wait for
work. On a machine where other processes keep cores busy, the spinning threads and the other
processes take turns on the same cores: on this project's 2-core machine with one core busy, the
``smoke`` protocol took 1.8 s with one thread and 31 s with two, ``default --only single`` 4.0 s
against 73 s (README, "Threads and jobs"). The policy:

* ``--threads N`` (N ≥ 1) uses N threads;
* ``--threads 0`` (the default) uses the cores this process may use (its affinity mask, or SLURM's
  ``SLURM_CPUS_PER_TASK``) less the cores other processes keep busy (the 1-minute load average,
  rounded; not counted inside a SLURM allocation, whose cores are the job's own), at least one,
  and, when the command knows the size of its training step (U·n·P (unit, patch) pairs, U = S·k·m),
  no more than one thread plus one per :data:`STEP_ELEMENTS_PER_THREAD` of them: a smaller step's
  operations are too short to share (``benchmarks/bench_cores.py``: ``default``, 0.41 M pairs,
  1.9 ms a step with one thread and 2.6 with two; ``paper``, 3.2 M, 14.9 and 10.7; ``paper_kd``,
  12.8 M, 49.7 and 32.7);
* :func:`plan_jobs` shares the threads out among processes that run a protocol's stages side by
  side (``multiview simulate --jobs``), which use two cores better than one process's two
  threads (1.93× the throughput of one thread at ``paper_kd``, against 1.52×);
* idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``, unless the variable
  is set already), so that a count that turns out too high when another job starts costs little
  (two threads with one core busy: 2.4 s, not 31 s).

Work that is a sequence of small operations (the CPU forward pass of :mod:`multiview.model`, in
cache-sized blocks) gains nothing from OpenMP: with sleeping threads, every operation pays for
waking them (two threads were slower than one). :func:`block_pool` gives such work threads of
its own instead, each running torch's operations on one thread: the blocks run side by side,
one per core, and the threads sleep between calls at no cost.

This module imports no torch; :func:`use_threads` imports it after setting the wait policy (which
OpenMP reads once, when torch loads it).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

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


STEP_ELEMENTS_PER_THREAD = 2**20
"""(unit, patch) pairs of a training step per thread beyond the first that ``--threads 0`` takes:
below about a million, a second thread's wake-ups cost more than its share of the work saves
(measured at 0.41 M, 0.83 M, 0.96 M, 1.6 M and 3.2 M pairs: two threads 0.64×, 1.09×, 0.91×,
1.03× and 1.18× the speed of one)."""


def default_threads(step_elements: int | None = None) -> int:
    """The threads of ``--threads 0``: the cores this process may use less the busy ones, ≥ 1; for
    a training step of ``step_elements`` (unit, patch) pairs, at most
    1 + step_elements // :data:`STEP_ELEMENTS_PER_THREAD`."""
    cores = cpu_count()
    free = max(1, min(cores, cores - busy_cores()))
    if step_elements is None:
        return free
    return min(free, 1 + max(0, step_elements) // STEP_ELEMENTS_PER_THREAD)


def resolve_threads(threads: int, step_elements: int | None = None) -> int:
    """``threads`` when positive, else :func:`default_threads` (of ``step_elements``)."""
    return threads if threads > 0 else default_threads(step_elements)


JOB_STEP_ELEMENTS = 2**18
"""(unit, patch) pairs of a training step from which ``--jobs 0`` runs stages side by side: a
worker process costs a few seconds to start (torch's import, the data drawn again), which a
smaller problem's whole protocol does not repay (``smoke``: 2.5 s in one process, 5.7 s in two)."""

MAX_JOBS = 4
"""Worker processes ``--jobs 0`` takes at most: the simulator's protocol has four stages that need
no other (single models, training the average, the two baselines) and three after the single
models; more processes than that would wait."""


def threads_per_job(threads: int, jobs: int) -> int:
    """Each of ``jobs`` processes' equal share of ``threads`` torch threads, at least one."""
    return max(1, threads // jobs)


def plan_jobs(threads: int, jobs: int, step_elements: int | None = None) -> tuple[int, int]:
    """(worker processes, torch threads each) of a protocol run on the CPU.

    ``threads``: the threads the run may use in all (0: :func:`default_threads`, the free
    cores); ``jobs``: processes that run stages side by side (0: as many as those threads
    allow, at most :data:`MAX_JOBS`, and one for a step under :data:`JOB_STEP_ELEMENTS` pairs).
    Each process gets an equal share of the threads, at least one; with ``threads`` 0, no more
    than a step of ``step_elements`` repays (:func:`default_threads`).
    """
    budget = resolve_threads(threads)
    if jobs <= 0:
        small = step_elements is not None and step_elements < JOB_STEP_ELEMENTS
        jobs = 1 if small else min(budget, MAX_JOBS)
    each = threads_per_job(budget, jobs)
    if threads <= 0 and step_elements is not None:
        each = min(each, default_threads(step_elements))
    return jobs, each


def sleep_when_idle() -> None:
    """Let idle OpenMP threads sleep rather than spin (``OMP_WAIT_POLICY=PASSIVE``, unless set):
    for this process when torch is not imported yet, and for the processes it starts."""
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)


def use_threads(threads: int = 0, step_elements: int | None = None) -> int:
    """Set torch's CPU threads by the policy (``threads`` > 0: exactly that many; 0: for a
    training step of ``step_elements`` (unit, patch) pairs, when given) and return the count.
    Call it before torch is first imported for the wait policy to take effect."""
    sleep_when_idle()
    n = resolve_threads(threads, step_elements)
    import torch

    torch.set_num_threads(n)
    return n


_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def block_pool(workers: int) -> ThreadPoolExecutor:
    """A pool of ``workers`` threads kept for the process, each running torch's operations on one
    thread (so ``workers`` tasks run side by side on as many cores). Made on first use, with all
    its threads started; the calling thread's torch thread count is left as it was."""
    with _POOLS_LOCK:
        pool = _POOLS.get(workers)
        if pool is None:
            import torch

            count = torch.get_num_threads()
            pool = ThreadPoolExecutor(workers, "multiview-block", initializer=_one_torch_thread)
            started = threading.Barrier(workers)
            list(pool.map(lambda _: started.wait(), range(workers)))  # every thread made and set up
            torch.set_num_threads(count)  # the count new threads start with: this thread's again
            _POOLS[workers] = pool
        return pool


def _one_torch_thread() -> None:
    """Give this thread one torch thread. torch sets a thread's count from the process-wide one
    on the thread's first parallel operation, so that is done first (else it would undo this)."""
    import torch

    torch.get_num_threads()
    torch.set_num_threads(1)
