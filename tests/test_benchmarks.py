"""The stage benchmark runs end to end at a tiny size and reports what the docs and run.py read
(no timing is asserted: the machine's load decides those)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not installed

from benchmarks.bench_stages import (  # noqa: E402
    TRAININGS,
    check_projection,
    project,
    stage_figure,
    stage_scaling,
    table_rows,
)
from benchmarks.run import stage_rows  # noqa: E402

pytestmark = pytest.mark.timeout(300)


def test_stage_scaling_reports_every_stage_and_a_projection():
    report = stage_scaling(
        "cpu", steps=4, n_test=60, axes={"model.m": [1, 2]}, projections=(), base_preset="smoke"
    )
    assert set(report) >= {"base", "steps", "n_test", "axes", "projections", "points"}
    axis = report["axes"]["model.m"]
    assert axis["symbol"] == "m" and axis["values"] == [1, 2]
    assert set(axis["stages"]) >= set(TRAININGS) | {"ensemble", "ensemble_of_kd"}
    for entry in axis["stages"].values():
        assert len(entry["cost_seconds"]) == 2 and all(c > 0 for c in entry["cost_seconds"])
        assert math.isfinite(entry["loglog_slope"])
    point = next(iter(report["points"].values()))
    for stage, trainings in TRAININGS.items():
        entry = point["stages"][stage]
        assert set(entry["trainings"]) == set(trainings)
        assert entry["step_seconds"] > 0 and entry["fixed_seconds"] >= 0
    assert len(table_rows(report)) == len(table_rows(report, "cpu")) == len(axis["stages"])
    assert stage_figure(report).axes

    proj = project(point, "smoke", {}, {"single": 10})
    assert proj["stages"]["single"]["steps"] == {"single": 10}
    assert proj["stages"]["kd"]["steps"] == {"kd": 300}  # smoke's protocol.kd_steps
    assert proj["stages"]["ntk"]["steps"] == {"ntk:single": 100, "ntk:training_average": 100, "ntk:kd": 300}
    assert proj["seconds"] >= sum(s["training_seconds"] for s in proj["stages"].values())

    both = {
        "budget": project(point, "smoke", {}),
        "used": project(point, "smoke", {}, {"single": 10}),
        "used, CPU time": project(point, "smoke", {}, {"single": 10}, clock="cpu"),
    }
    report["projections"] = {"paper": both}
    table = Table()
    for column in ("figure", "value", "target", "met"):
        table.add_column(column)
    stage_rows(table, report)
    assert table.row_count == 1 + 1 + 2  # base costs, one axis, two projections


def test_check_projection_reports_projected_and_measured_seconds_per_stage():
    checked = check_projection("smoke", steps=6, measure_steps=4)
    assert set(checked["stages"]) >= set(TRAININGS)
    for entry in checked["stages"].values():
        assert set(entry) == {
            "projected_seconds",
            "measured_seconds",
            "projected_cpu_seconds",
            "measured_cpu_seconds",
        }
        assert all(v >= 0 for v in entry.values())
    assert checked["measured_seconds"] > 0 and checked["projected_seconds"] > 0


def test_the_step_pass_model_counts_main_memory_passes():
    """Blocked: the forward pass only reads the noise coordinates and writes the slopes, the
    backward pass reads the slopes, writes them back and writes the gradient, the update reads
    two arrays and writes one; whole: each pass, with t^(q−1) by repeated squaring (q − 1 = 2: t²
    written in place of a copy)."""
    from benchmarks.bench_training import orthogonal_step_passes

    backward = 5 + 2 + 2 + 3
    for q in (3, 6):
        assert sum(orthogonal_step_passes(q, blocked=True).values()) == 2 + 3 + 3
    power = {2: 2, 3: 2 + 2 + 3, 5: 2 + 2 + 2 + 3}  # q − 1 → passes: copy, squares, multiplies
    for q, passes in power.items():
        whole = orthogonal_step_passes(q + 1, blocked=False)
        assert whole["activation and derivative"] == 12 + passes
        assert sum(whole.values()) == 6 + 12 + passes + 1 + backward


def test_the_cores_benchmark_times_threads_and_processes_side_by_side():
    """benchmarks/bench_cores.py on smoke: three positive step times and the two ratios made of them."""
    from benchmarks.bench_cores import measure

    r = measure("smoke", cores=2, steps=3)
    assert all(r[key] > 0 for key in ("one_thread_ms", "threads_ms", "processes_ms_each"))
    assert math.isclose(r["threads_speedup"], r["one_thread_ms"] / r["threads_ms"])
    assert math.isclose(r["processes_throughput"], 2 * r["one_thread_ms"] / r["processes_ms_each"])
