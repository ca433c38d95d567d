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
    backward pass reads the slopes (scaled into a scratch block) and writes the gradient, the
    update reads two arrays and writes one; whole: each pass, with t^(q−1) by repeated squaring
    (no copy of the first factor but t itself); the blocked step's passes in cache and in main
    memory are together every pass of the whole step, category by category."""
    from benchmarks.bench_training import orthogonal_step_cache_passes, orthogonal_step_passes

    backward = 5 + 2 + 2 + 3
    for q in (3, 6):
        assert sum(orthogonal_step_passes(q, blocked=True).values()) == 2 + 2 + 3
    power = {1: 2, 2: 2, 3: 2 + 3, 4: 2 + 2, 5: 2 + 2 + 3}  # q − 1 → passes: copy, squares, multiplies
    for q, passes in power.items():
        whole = orthogonal_step_passes(q + 1, blocked=False)
        assert whole["activation and derivative"] == 12 + passes
        assert sum(whole.values()) == 6 + 12 + passes + 1 + backward
        blocked, cache = orthogonal_step_passes(q + 1, blocked=True), orthogonal_step_cache_passes(q + 1)
        assert sum(blocked.values()) + sum(cache.values()) == sum(whole.values())
        forward = ("pre-activations", "activation and derivative", "per-class sums")
        in_forward = blocked["noise coordinates read"] + blocked["slopes written"]
        assert sum(cache[c] for c in forward) + in_forward == sum(whole[c] for c in forward)
        assert cache["update"] + blocked["update"] == whole["update"] + 1  # the rows' norms
        assert cache["step size"] == whole["step size"] - 1  # the other norm is the update's
    # t⁶ into both buffers of a block: t² is kept in the output before t⁴ overwrites the scratch
    whole, cache = orthogonal_step_passes(7, blocked=False), orthogonal_step_cache_passes(7)
    assert whole["activation and derivative"] == 12 + 2 + 2 + 3
    assert cache["activation and derivative"] == 12 + 2 + 2 + 3 + 2 - 1


def test_the_roofline_adds_each_level_at_its_measured_limit(monkeypatch):
    """step_vs_bandwidth on smoke shapes, whole and (with small blocks) blocked: the roofline is
    the main-memory passes at the triad, the cache passes at the cache triad and the product's
    arithmetic beyond its read at the GEMM peak; the fractions are those times over the step's."""
    import torch

    import multiview.model
    from benchmarks.bench_training import machine_roofline, orthogonal_step_cache_passes, step_vs_bandwidth
    from multiview.config import get_preset

    cpu = torch.device("cpu")
    whole = step_vs_bandwidth(cpu, "smoke", steps=2)
    assert not whole["blocked"] and whole["cache_passes"] == {} and whole["roofline_terms"]["cache"] == 0
    monkeypatch.setattr(multiview.model, "BLOCK_SCRATCH_BYTES", 2**14)
    blocked = step_vs_bandwidth(cpu, "smoke", steps=2)
    q = get_preset("smoke").model.q
    assert blocked["blocked"] and blocked["cache_passes"] == orthogonal_step_cache_passes(q)
    for r in (whole, blocked):
        array = r["shapes"]["array_MB"] * 1e6
        terms = r["roofline_terms"]
        assert terms["main memory"] == pytest.approx(r["bytes_per_step"] / (r["triad_GBps"] * 1e9))
        cache_bw = r["cache_triad_GBps"] * 1e9
        assert terms["cache"] == pytest.approx(sum(r["cache_passes"].values()) * array / cache_bw)
        product = r["product_gflop"] / r["gemm_peak_gflops"]
        assert terms["product arithmetic"] == pytest.approx(max(0.0, product - array / cache_bw))
        assert r["roofline_seconds"] == pytest.approx(sum(terms.values()))
        assert r["fraction_of_roofline"] == pytest.approx(r["roofline_seconds"] / r["step_seconds"])
        assert r["roofline_met"] == (r["fraction_of_roofline"] >= 0.5)
        assert r["fraction_of_bandwidth"] == pytest.approx(r["achieved_GBps"] / r["triad_GBps"])
    threads = torch.get_num_threads()
    machine = machine_roofline(cpu, blocked, cores=2)  # the same passes at two threads' limits
    assert torch.get_num_threads() == threads and machine["limits"]["threads"] == 2
    lim, array = machine["limits"], blocked["shapes"]["array_MB"] * 1e6
    main = blocked["bytes_per_step"] / (lim["triad_GBps"] * 1e9)
    assert machine["terms"]["main memory"] == pytest.approx(main)
    cache_bytes = sum(blocked["cache_passes"].values()) * array
    assert machine["terms"]["cache"] == pytest.approx(cache_bytes / (lim["cache_triad_GBps"] * 1e9))
    assert machine["seconds"] == pytest.approx(sum(machine["terms"].values()))


def test_the_cores_benchmark_times_threads_and_processes_side_by_side():
    """benchmarks/bench_cores.py on smoke: three positive step times and the two ratios made of them."""
    from benchmarks.bench_cores import measure

    r = measure("smoke", cores=2, steps=3)
    assert all(r[key] > 0 for key in ("one_thread_ms", "threads_ms", "processes_ms_each"))
    assert math.isclose(r["threads_speedup"], r["one_thread_ms"] / r["threads_ms"])
    assert math.isclose(r["processes_throughput"], 2 * r["one_thread_ms"] / r["processes_ms_each"])
