"""The SLURM backend against a real cluster (``.ci/run`` starts one with shared/tools/slurm).

Skipped, with the reason, when ``sbatch``/``sacct`` are missing or the cluster does not answer.
Each test has its own sweep folder, hence its own submitit folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sweep_helpers import flat, run_cli, spec_text, write_spec

from multiview import stages
from multiview.sweep import slurm
from multiview.sweep.collect import METRICS, build_table
from multiview.sweep.plan import plan
from multiview.sweep.runner import run_unit
from multiview.sweep.spec import parse_spec
from multiview.sweep.store import SweepStore

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(300)]


@pytest.fixture(scope="module", autouse=True)
def _cluster():
    """Skip, saying why, when there is no SLURM cluster to talk to (asked once, only when selected)."""
    reason = slurm.unavailable_reason()
    if reason is not None:
        pytest.skip(f"no SLURM cluster: {reason}")


SLURM = "cpus_per_task = 1\nmem_gb = 1\ntime_min = 10\npoll_s = 1\narray_parallelism = 4"
GRID = '"data.mu" = [0.1, 0.3]\n"data.rho" = [0.1, 0.3]'


def test_grid_through_slurm_matches_the_same_grid_run_locally(tmp_path):
    via_slurm, local = tmp_path / "slurm_sweep", tmp_path / "local_sweep"
    spec_s = write_spec(tmp_path / "s.toml", via_slurm, GRID, slurm=SLURM + "\nunits_per_task = 2")
    spec_l = write_spec(tmp_path / "l.toml", local, GRID)
    submitted = run_cli("sweep", spec_s, "--backend", "slurm", "--no-wait")
    assert submitted.exit_code == 0, submitted.output
    assert "submitted 4 unit(s) as job array" in flat(submitted.output)
    # A second invocation follows the queued tasks instead of submitting them again.
    result = run_cli("sweep", spec_s, "--backend", "slurm", "--quiet")
    assert result.exit_code == 0, result.output
    assert "re-attached to 4 task(s)" in flat(result.output) and "submitted" not in result.output
    assert run_cli("sweep", spec_l, "--quiet").exit_code == 0

    store = SweepStore(via_slurm)
    assert all(store.info(k)["backend"] == "slurm" and store.info(k)["slurm_job"] for k in store.keys())
    assert len({store.info(k)["slurm_job"] for k in store.keys()}) == 2  # two units per array task
    a, b = build_table(via_slurm), build_table(local)
    assert list(a["unit"]) == list(b["unit"]) and len(a) == 4
    metrics = [m for m in METRICS if m != "wall_seconds"]
    pd_equal = a[metrics].equals(b[metrics])  # deterministic on the CPU: bit-for-bit the same numbers
    assert pd_equal, a[metrics].compare(b[metrics])

    # Re-running through SLURM submits nothing: every unit is done.
    again = run_cli("sweep", spec_s, "--backend", "slurm", "--quiet")
    assert again.exit_code == 0 and "submitted" not in again.output and "to run 0" in flat(again.output)


def test_failed_and_cancelled_units_are_reported_with_their_logs(tmp_path):
    out = tmp_path / "sweep"
    # data.P = 4 fails at run time (on_cap = "error"); max_steps = 10^6 runs until it is cancelled.
    fixed = '[sweep.set]\n"data.n_test" = 500\n"data.on_cap" = "error"\n"train.loss_threshold" = 0.0\n'
    spec = parse_spec(
        spec_text(out, '"data.P" = [4, 8]\n"train.max_steps" = [100, 1000000]', fixed=fixed, slurm=SLURM)
    )
    store = SweepStore(out)
    p = plan(spec, store)
    jobs = slurm.submit(store, p.run, spec.slurm)
    assert len(jobs) == 4 and len({j.job_id.split("_")[0] for j in jobs}) == 1  # one job array
    by_point = {(j.unit.params["data.P"], j.unit.params["train.max_steps"]): j for j in jobs}
    long = by_point[(8, 1000000)]
    deadline = time.monotonic() + 120
    while store.info(long.unit.key).get("state") != "running":
        assert time.monotonic() < deadline, "the long unit never started"
        time.sleep(0.2)
    long.job.cancel()

    report = slurm.watch(store, jobs, poll_s=1)
    assert report.computed == [by_point[(8, 100)].unit.key]
    problems = {(pr.unit.params["data.P"], pr.unit.params["train.max_steps"]): pr for pr in report.problems}
    assert set(problems) == {(4, 100), (4, 1000000), (8, 1000000)}
    for point in ((4, 100), (4, 1000000)):
        pr = problems[point]
        assert pr.state == "failed" and "DataError" in pr.error
        assert "Traceback" in pr.log and "data.on_cap" in pr.log and "DataError" in pr.log
        assert pr.log_path.endswith("_log.err")
        assert store.state(pr.unit.key) == "failed"
    cancelled = problems[(8, 1000000)]
    assert cancelled.state == "CANCELLED" and "without a result" in cancelled.error
    assert cancelled.log_path.endswith("_log.err")
    deadline = time.monotonic() + 60  # SLURM kills the task's processes within KillWait
    while store.state(long.unit.key) == "running":
        assert time.monotonic() < deadline, "the cancelled task still holds its unit"
        time.sleep(0.5)
    assert store.state(long.unit.key) == "pending"  # re-run by the next sweep; not a failure

    again = plan(spec, store)
    assert [u.key for u in again.run] == [long.unit.key] and len(again.failed) == 2
    assert len(plan(spec, store, retry_failed=True).run) == 3


def test_cli_reports_a_failed_unit_and_its_log(tmp_path):
    out = tmp_path / "sweep"
    fixed = '[sweep.set]\n"data.n_test" = 500\n"train.max_steps" = 100\n"data.on_cap" = "error"\n'
    spec = write_spec(tmp_path / "f.toml", out, '"data.P" = [4]', fixed=fixed, slurm=SLURM)
    result = run_cli("sweep", spec, "--backend", "slurm", "--quiet")
    assert result.exit_code == 1
    assert "failed" in result.output and "DataError" in result.output and "_log.err" in flat(result.output)


# Nine stages of one to seven seconds each on one thread, 15 to 45 s in all. The test sends the
# task the signal SLURM sends before a time limit (or a preemption) once the first stage is saved;
# the two-minute limit, warned 20 s before it, would only come 70 to 100 s into an attempt (SLURM's
# timer has a resolution of about 30 s), after the unit is done, so exactly one requeue happens.
LONG_SET = """
[sweep.set]
"data.n_test" = 500
"train.max_steps" = 6000
"train.loss_threshold" = 0.0
"protocol.kd_steps" = 4000
"protocol.baseline_steps" = 2500
"""
LONG_STAGES = json.dumps(stages.names(stages.SYNTHETIC))
REQUEUED = "cpus_per_task = 1\nmem_gb = 1\ntime_min = 2\nsignal_delay_s = 20\nmax_requeues = 8\nthreads = 1"
COMPARE = Path(__file__).resolve().parents[2] / "scripts" / "compare_results.py"


def _output(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()


def _hurry_requeued(job_id: str, stop: threading.Event) -> None:
    """SLURM holds a requeued job for about two minutes before it may start again (its begin time);
    once the interrupted attempt has left the node, move that begin time to now so the test does
    not wait for it. Only after two seconds of a held job on an idle node: a start moved at the
    very moment of the requeue fails at once (its batch step is cancelled with the old one)."""
    settled = 0  # polls in a row that saw the job held and the node idle
    while not stop.wait(0.5):
        held = _output("squeue", "-h", "-j", job_id, "-o", "%r") == "BeginTime"
        idle = set(_output("sinfo", "-h", "-N", "-o", "%T").split()) == {"idle"}
        settled = settled + 1 if held and idle else 0
        if settled >= 4:
            subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=False)
            settled = 0


def _warn_once_a_stage_is_saved(job_id: str, store: SweepStore, key: str, stop: threading.Event) -> None:
    """Once the first stage checkpoint is saved and no attempt has been requeued, send the task the
    signal SLURM sends before a time limit or a preemption (SIGUSR2), once: the interruption comes
    at a known point, whatever the machine's speed."""
    stages_dir = store.unit_dir(key) / "stages"
    while not stop.wait(0.2):
        if any(e["event"] == "requeued" for e in store.events() if e["key"] == key):
            return
        if stages_dir.is_dir() and any(stages_dir.glob("*.pt")):
            subprocess.run(["scancel", "--signal=USR2", job_id], check=False)
            return


@pytest.mark.timeout(420)
def test_a_unit_warned_by_slurm_is_requeued_and_resumes_to_the_same_numbers(tmp_path):
    out = tmp_path / "sweep"
    spec = parse_spec(spec_text(out, '"data.mu" = [0.1]', stages=LONG_STAGES, fixed=LONG_SET, slurm=REQUEUED))
    store = SweepStore(out)
    (unit,) = plan(spec, store).run
    (task,) = slurm.submit(store, [unit], spec.slurm)
    stop = threading.Event()
    hurry = threading.Thread(target=_hurry_requeued, args=(task.job_id, stop), daemon=True)
    warn = threading.Thread(
        target=_warn_once_a_stage_is_saved, args=(task.job_id, store, unit.key, stop), daemon=True
    )
    hurry.start()
    warn.start()
    try:
        reference = run_unit(tmp_path / "reference", unit, "cpu", threads=1)  # the same unit, uninterrupted
        report = slurm.watch(store, [task], poll_s=1)
    finally:
        stop.set()
        hurry.join()
        warn.join()
    assert reference.state == "done"
    events = [e for e in store.events() if e["key"] == unit.key]
    told = f"{report}; events {events}"
    assert report.computed == [unit.key] and not report.problems, told

    starts = [e["time"] for e in events if e["event"] == "start"]
    requeued = [e for e in events if e["event"] == "requeued"]
    print(f"\n{len(starts)} attempts, requeued {len(requeued)} times: {[e['event'] for e in events]}")
    assert len(requeued) >= 1 and len(starts) == len(requeued) + 1
    assert store.info(unit.key)["attempts"] == len(starts) and store.info(unit.key)["backend"] == "slurm"
    checkpoints = sorted((store.unit_dir(unit.key) / "stages").glob("*.pt"), key=lambda p: p.stat().st_mtime)
    assert checkpoints[0].stat().st_mtime < starts[-1]  # a stage of an earlier attempt was loaded, not redone

    # Every number of results.json and of every stage checkpoint as in the uninterrupted run.
    same = subprocess.run(
        [
            sys.executable,
            str(COMPARE),
            str(store.unit_dir(unit.key)),
            str(tmp_path / "reference" / "units" / unit.key),
        ],
        capture_output=True,
        text=True,
    )
    print(same.stdout)
    assert same.returncode == 0, same.stdout + same.stderr
