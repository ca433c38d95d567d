"""The SLURM backend: the units as one job array, submitted and watched through ``submitit``.

SLURM does the scheduling: :func:`submit` hands the units to ``executor.map_array`` (one array
task per ``units_per_task`` units, at most ``array_parallelism`` at a time, with the partition,
time limit, GPUs, CPUs and memory of ``[slurm]``). Each task is a :class:`UnitTask`: it runs its
units one after another with :func:`multiview.sweep.runner.run_unit`, with the Python interpreter
that submitted it (same paths on the cluster's nodes), writing into the sweep folder.

A task that reaches its time limit is not lost: SLURM warns it ``signal_delay_s`` seconds before
the limit, submitit calls :meth:`UnitTask.checkpoint`, which records a ``requeued`` event for its
units and hands submitit the same call again, and the task is requeued (``scontrol requeue``, at
most ``max_requeues`` times). The requeued task skips its finished units and resumes the others
from their checkpoints: the simulator's per stage, CIFAR's per model and, within a model, per
epoch (:mod:`multiview.cifar.fit`). A preempted task is requeued the same way.
:func:`attach` re-attaches a re-run to tasks still queued or running from an earlier invocation
instead of submitting them twice; :func:`watch` polls ``sacct`` (one call for all tasks), reports
progress, and classifies each finished task from the result store: done, failed (the unit's code
raised: its traceback and the task's stderr) or ended without a result (CANCELLED, TIMEOUT,
NODE_FAIL, OUT_OF_MEMORY ...: such units stay pending and the next ``multiview sweep`` re-runs them).
``submitit`` is an optional dependency: ``pip install 'multiview[slurm]'``.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multiview.files import read_json, write_json
from multiview.sweep.plan import Problem, SweepReport
from multiview.sweep.runner import Outcome, UnitFailed, run_unit, slurm_job_id
from multiview.sweep.spec import SlurmOptions, Unit
from multiview.sweep.store import FAILED, SweepStore

LIVE_STATES = ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING")
OnProgress = Callable[[dict[str, int]], None]


class SlurmUnavailable(RuntimeError):
    """The SLURM backend cannot run here; the message says why and what to install or start."""


@dataclass
class Submitted:
    """One unit and the SLURM array task that runs it."""

    unit: Unit
    job: Any  # submitit.SlurmJob
    attached: bool = False

    @property
    def job_id(self) -> str:
        return str(self.job.job_id)


def unavailable_reason() -> str | None:
    """Why the SLURM backend cannot run here (``None`` when it can)."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        return "the SLURM backend needs submitit: pip install 'multiview[slurm]'"
    for tool, why in (
        ("sbatch", "no SLURM client installed"),
        ("sacct", "submitit follows jobs with sacct (SLURM accounting)"),
        ("sinfo", "no SLURM client installed"),
        ("squeue", "no SLURM client installed"),
    ):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH ({why})"
    checks = (
        (["sinfo", "-h", "-o", "%T"], "the SLURM controller does not answer (sinfo failed)"),
        (["sacct", "-n", "-X", "-S", "now"], "SLURM accounting does not answer (sacct failed)"),
    )
    for cmd, why in checks:
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=15)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            return f"{why}: {detail.decode(errors='replace').strip() or exc}"
    return None


def _submitit():
    reason = unavailable_reason()
    if reason is not None:
        raise SlurmUnavailable(reason)
    import submitit

    return submitit


def _folder(store: SweepStore, options: SlurmOptions) -> Path:
    base = Path(options.folder) if options.folder else store.slurm_dir
    return base.resolve() / "%j"


def log_folder(store: SweepStore, options: SlurmOptions) -> Path:
    """Where submitit writes each task's folder (scripts, stdout, stderr, pickles)."""
    return _folder(store, options).parent


def executor_parameters(options: SlurmOptions) -> dict[str, Any]:
    """The ``update_parameters`` arguments for ``[slurm]`` (unset options are left to SLURM)."""
    params: dict[str, Any] = {
        "name": options.job_name,
        "timeout_min": options.time_min,
        "cpus_per_task": options.cpus_per_task,
        "mem_gb": options.mem_gb,
        "slurm_array_parallelism": options.array_parallelism,
        "slurm_signal_delay_s": options.signal_delay_s,
    }
    if options.gpus_per_node > 0:
        params["gpus_per_node"] = options.gpus_per_node
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(options, key):
            params[f"slurm_{key}"] = getattr(options, key)
    if options.setup:
        params["slurm_setup"] = list(options.setup)
    if options.additional:
        params["slurm_additional_parameters"] = dict(options.additional)
    return params


class UnitTask:
    """What one array task runs: its units, one after another, into the sweep folder ``root``
    (:func:`~multiview.sweep.runner.run_unit`). Every unit is attempted; when any failed, the task
    ends FAILED (:class:`~multiview.sweep.runner.UnitFailed`) after the last one. submitit calls
    :meth:`checkpoint` when the task reaches its time limit or is preempted."""

    def __init__(self, root: str, device: str, threads: int, keep_stages: bool) -> None:
        self.root = root
        self.device = device
        self.threads = threads
        self.keep_stages = keep_stages

    def __call__(self, units: list[Unit]) -> list[Outcome]:
        outcomes = [
            run_unit(self.root, u, self.device, self.threads, self.keep_stages, backend="slurm")
            for u in units
        ]
        failed = [(u, o) for u, o in zip(units, outcomes, strict=True) if o.state == FAILED]
        if failed:
            store = SweepStore(self.root)
            raise UnitFailed(
                "; ".join(
                    f"unit {u.key} ({u.label()}) failed: {o.error} (see {store.info_path(u.key)})"
                    for u, o in failed
                )
            )
        return outcomes

    def checkpoint(self, units: list[Unit]) -> Any:
        """Requeue the same units: their finished stages (and CIFAR models and epochs) are on disk,
        so the next attempt resumes them. Records a ``requeued`` event for each unfinished unit."""
        from submitit.helpers import DelayedSubmission

        store = SweepStore(self.root)
        for u in units:
            if not store.is_done(u.key):
                store.log_event("requeued", u.key, slurm_job=slurm_job_id())
        return DelayedSubmission(self, units)


def submit(
    store: SweepStore, units: list[Unit], options: SlurmOptions, keep_stages: bool = True
) -> list[Submitted]:
    """Submit ``units`` as one job array, ``units_per_task`` per task; record the task ids in
    ``slurm/jobs.json``."""
    if not units:
        return []
    submitit = _submitit()
    executor = submitit.AutoExecutor(
        folder=_folder(store, options), cluster="slurm", slurm_max_num_timeout=options.max_requeues
    )
    executor.update_parameters(**executor_parameters(options))
    task = UnitTask(str(store.root.resolve()), options.device, options.threads, keep_stages)
    n = options.units_per_task
    batches = [units[i : i + n] for i in range(0, len(units), n)]
    jobs = executor.map_array(task, batches)
    pairs = [(u, job) for batch, job in zip(batches, jobs, strict=True) for u in batch]
    _remember(store, options, {u.key: str(job.job_id) for u, job in pairs})
    return [Submitted(u, job) for u, job in pairs]


def attach(store: SweepStore, units: list[Unit], options: SlurmOptions) -> tuple[list[Submitted], list[Unit]]:
    """Split ``units`` into those whose earlier task is still queued or running (re-attached) and
    the rest (to submit)."""
    known = _jobs(store)
    candidates = {u.key: known[u.key] for u in units if u.key in known}
    if not candidates:
        return [], list(units)
    submitit = _submitit()
    live = queued_states()
    attached, rest = [], []
    for u in units:
        rec = candidates.get(u.key)
        if rec and live.get(rec["job_id"], "") in LIVE_STATES:
            job = submitit.SlurmJob(folder=rec["folder"], job_id=rec["job_id"])
            attached.append(Submitted(u, job, attached=True))
        else:
            rest.append(u)
    return attached, rest


def queued_states() -> dict[str, str]:
    """``{task id: state}`` of this user's jobs the controller still holds (``squeue``, arrays
    expanded); unlike ``sacct`` it knows a job the moment it is submitted."""
    cmd = ["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%i|%T"]
    try:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60).stdout
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        return {}
    states = {}
    for line in out.splitlines():
        job_id, _, state = line.strip().partition("|")
        if job_id:
            states[job_id] = state
    return states


def watch(
    store: SweepStore,
    submitted: list[Submitted],
    poll_s: float = 5.0,
    on_progress: OnProgress | None = None,
    log_lines: int = 40,
) -> SweepReport:
    """Wait for every task; report progress after each poll; classify each task as it ends."""
    report = SweepReport(total=len(submitted), submitted=[s.job_id for s in submitted])
    if not submitted:
        return report
    watcher = type(submitted[0].job).watcher
    remaining = list(submitted)
    while True:
        watcher.update()  # one sacct call for every registered task
        still = []
        for s in remaining:
            if s.job.done():
                _classify(store, s, report, log_lines)
            else:
                still.append(s)
        remaining = still
        if on_progress is not None:
            counts = Counter(_state(s.job) for s in remaining)
            counts["DONE"] = len(report.computed) + len(report.skipped_done)
            counts["FAILED"] = len(report.problems)
            on_progress(dict(counts))
        if not remaining:
            return report
        time.sleep(poll_s)


def _state(job: Any) -> str:
    state = str(job.watcher.get_state(job.job_id, mode="cache") or "UNKNOWN")
    return state.split(" ")[0]


def _classify(store: SweepStore, s: Submitted, report: SweepReport, log_lines: int) -> None:
    key = s.unit.key
    outcome = _result(s.job, key)
    if store.is_done(key):
        ran_here = store.info(key).get("slurm_job") == s.job_id  # an attempt of this task computed it
        if outcome is not None and getattr(outcome, "state", "") == "cached" and not ran_here:
            report.skipped_done.append(key)
        else:
            report.computed.append(key)
            report.seconds[key] = float(store.info(key).get("seconds", 0.0))
        return
    if outcome is not None and getattr(outcome, "state", "") == "busy":
        report.busy.append(key)
        return
    info = store.info(key)
    log = _tail(s.job, log_lines)
    path = str(s.job.paths.stderr)
    if info.get("state") == FAILED:
        text = info.get("traceback") or log
        report.problems.append(Problem(s.unit, FAILED, info.get("error", "the unit raised"), text, path))
        return
    state = _state(s.job)
    report.problems.append(
        Problem(
            s.unit,
            state,
            f"task {s.job_id} ended {state} without a result; the unit stays pending",
            log,
            path,
        )
    )


def _result(job: Any, key: str) -> Any:
    """The outcome of unit ``key`` when its task wrote a result and succeeded, else ``None``
    (never waits)."""
    try:
        if not job.paths.result_pickle.exists():
            return None
        outcomes = job.result()
    except Exception:
        return None
    if not isinstance(outcomes, list):
        outcomes = [outcomes]
    return next((o for o in outcomes if getattr(o, "key", None) == key), None)


def _tail(job: Any, lines: int) -> str:
    try:
        text = job.stderr() or ""
    except Exception:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _jobs(store: SweepStore) -> dict[str, dict[str, str]]:
    path = store.slurm_dir / "jobs.json"
    try:
        return read_json(path)
    except (FileNotFoundError, ValueError):
        return {}


def _remember(store: SweepStore, options: SlurmOptions, ids: dict[str, str]) -> None:
    jobs = _jobs(store)
    folder = str(_folder(store, options))
    now = time.time()
    for key, job_id in ids.items():
        jobs[key] = {"job_id": job_id, "folder": folder, "submitted": now}
    write_json(store.slurm_dir / "jobs.json", jobs)
