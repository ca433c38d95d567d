"""Resume after ``kill -9``: finished units are kept as they are, the rest is computed once."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from sweep_helpers import cli_command, flat, run_subprocess, write_spec

from multiview.sweep.collect import build_table
from multiview.sweep.store import SweepStore

# About a second per unit, so the sweep is surely killed between its first and its last unit.
SLOW_SET = """
[sweep.set]
"data.n_test" = 500
"train.max_steps" = 1500
"train.loss_threshold" = 0.0
"""


def test_kill_9_midway_then_rerun_computes_only_the_rest(tmp_path):
    out = tmp_path / "sweep"
    spec = write_spec(
        tmp_path / "kill.toml", out, '"data.mu" = [0.1, 0.2]\n"data.rho" = [0.1, 0.2]', fixed=SLOW_SET
    )
    store = SweepStore(out)
    proc = subprocess.Popen(
        cli_command("sweep", spec, "--quiet"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 90
        # Wait until a unit is recorded as done (unit.json), not only until its results.json is
        # complete: a kill between the two leaves a finished unit whose record says "running".
        while not any(store.is_done(k) and store.info(k).get("state") == "done" for k in store.keys()):
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "no unit finished in 90 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    keys = store.keys()
    assert len(keys) == 4
    done_before = {k for k in keys if store.is_done(k)}
    assert 1 <= len(done_before) < 4, "the kill should land between the first and the last unit"
    kept = {
        k: (
            store.results_path(k).read_bytes(),
            store.results_path(k).stat().st_mtime_ns,
            store.info_path(k).read_bytes(),
        )
        for k in done_before
    }
    n_events_before = len(store.events())

    result = run_subprocess("sweep", spec, "--quiet", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"done {len(done_before)} to run {4 - len(done_before)}" in flat(result.stdout)

    # Finished units were not recomputed: same bytes, same mtime, no second start.
    for k, (results, mtime, info) in kept.items():
        assert store.results_path(k).read_bytes() == results
        assert store.results_path(k).stat().st_mtime_ns == mtime
        assert store.info_path(k).read_bytes() == info
    rerun = store.events()[n_events_before:]
    for event in ("start", "done"):
        assert sorted(e["key"] for e in rerun if e["event"] == event) == sorted(set(keys) - done_before)

    # Nothing is corrupted: every result parses, is complete and belongs to its unit.
    for k in keys:
        res = json.loads(store.results_path(k).read_text())
        assert res["complete"] and res["config_hash"] == k
        assert store.info(k)["state"] == "done"
    table = build_table(out)
    assert len(table) == 4 and table["error_single"].notna().all()
