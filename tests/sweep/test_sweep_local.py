"""The local backend end to end: run, skip finished units, failures, collect, phase diagram."""

from __future__ import annotations

import json
import math
import os

import pandas as pd
import pytest
from sweep_helpers import flat, run_cli, write_spec

import multiview
from multiview.files import read_json
from multiview.sweep.collect import METRICS, build_table
from multiview.sweep.store import SweepStore


def _events(store: SweepStore, event: str) -> list[str]:
    return [e["key"] for e in store.events() if e["event"] == event]


def test_local_sweep_runs_resumes_collects_and_plots(tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    spec = write_spec(tmp_path / "grid.toml", out, '"data.mu" = [0.1, 0.3]\n"data.rho" = [0.1, 0.3]')
    result = run_cli("sweep", spec, "--quiet")
    assert result.exit_code == 0, result.output
    store = SweepStore(out)
    keys = store.keys()
    assert len(keys) == 4 and all(store.is_done(k) for k in keys)
    assert sorted(_events(store, "done")) == keys
    for key in keys:
        res = read_json(store.results_path(key))
        assert res["config_hash"] == key and res["complete"]
        assert store.info(key)["state"] == "done"
        assert (store.unit_dir(key) / "stages" / "single.pt").exists()

    # Re-running skips every finished unit: nothing starts again, nothing is rewritten.
    stamps = {k: store.results_path(k).stat().st_mtime_ns for k in keys}
    again = run_cli("sweep", spec, "--quiet")
    assert again.exit_code == 0, again.output
    assert "done 4 to run 0" in flat(again.output)
    assert len(_events(store, "start")) == 4
    assert stamps == {k: store.results_path(k).stat().st_mtime_ns for k in keys}

    # One table: a row per unit, swept keys, seed, metrics, the full config.
    collected = run_cli("collect", out)
    assert collected.exit_code == 0, collected.output
    for table in (pd.read_csv(out / "table.csv"), pd.read_parquet(out / "table.parquet")):
        assert len(table) == 4
        assert list(table.columns[:5]) == ["unit", "status", "data.mu", "data.rho", "seed"]
        assert set(METRICS) <= set(table.columns)
        assert {"config.data.k", "config.model.sigma_0", "config.protocol.stages"} <= set(table.columns)
        assert sorted(zip(table["data.mu"], table["data.rho"], strict=True)) == [
            (0.1, 0.1),
            (0.1, 0.3),
            (0.3, 0.1),
            (0.3, 0.3),
        ]
        for _, row in table.iterrows():
            res = read_json(store.results_path(row["unit"]))
            single = sum(res["single"]["test_error"]["all"]) / len(res["single"]["test_error"]["all"])
            ens = res["ensemble"]["test_error"]["all"][0]
            assert row["ensemble_gain"] == (single - ens)
            assert row["single_view_error"] >= 0 and 0 <= row["bound_pass_rate"] <= 1
            assert math.isnan(row["kd_gain"])  # the KD stage did not run
            assert row["config.protocol.stages"] == "single,ensemble"

    # And a row per model × method × stratum: the units' own tidy tables, with the swept keys.
    units = pd.concat([pd.read_csv(store.unit_dir(k) / "tidy.csv") for k in keys])
    assert list(units.columns[:4]) == ["run", "seed", "data.mu", "data.rho"]
    for tidy in (pd.read_csv(out / "tidy.csv"), pd.read_parquet(out / "tidy.parquet"), multiview.load(out)):
        assert len(tidy) == len(units) == 4 * 3 * (3 + 1)  # 4 units × 3 strata × (3 singles + 1 ensemble)
        key = ["run", "method", "model", "stratum"]
        merged = tidy.merge(units, on=key, suffixes=("", "_unit"))
        assert len(merged) == len(tidy) and (merged["error"] == merged["error_unit"]).all()
        assert (merged["data.mu"] == merged["data.mu_unit"]).all()
        singles = tidy[(tidy.method == "single") & (tidy.stratum == "all")]
        means = singles.groupby("run")["error"].mean()
        table = pd.read_csv(out / "table.csv").set_index("unit")
        assert means.to_dict() == pytest.approx(table.loc[means.index, "error_single"].to_dict())
    assert (
        multiview.load(store.unit_dir(keys[0]))["data.mu"] == units[units.run == keys[0]]["data.mu"].iloc[0]
    ).all()

    # Without pyarrow (the parquet extra) the table is the CSV alone, with a note; asking for
    # Parquet then is a named refusal.
    monkeypatch.setattr("multiview.sweep.collect.have_parquet", lambda: False)
    csv_only = run_cli("collect", out, "--out", out / "csv-only")
    assert csv_only.exit_code == 0 and "pyarrow is not installed" in flat(csv_only.output)
    assert (out / "csv-only.csv").exists() and not (out / "csv-only.parquet").exists()
    asked = run_cli("collect", out, "--format", "csv,parquet", "--out", out / "asked")
    assert asked.exit_code == 2 and "multiview[parquet]" in asked.stderr and not (out / "asked.csv").exists()
    monkeypatch.undo()

    plotted = run_cli("plot", "phase", out, "--x", "mu", "--y", "rho", "--metric", "single_view_error")
    assert plotted.exit_code == 0, plotted.output
    for ext in ("png", "pdf"):
        path = out / "figures" / f"phase_single_view_error_mu_rho.{ext}"
        assert path.exists() and path.stat().st_size > 1000
    bad = run_cli("plot", "phase", out, "--x", "mu", "--y", "sigma_0")
    assert bad.exit_code == 2 and "not a column" in bad.output

    pinned = ("--where", "data.mu=0.1", "--where", "data.rho=0.3", "--format", "png")
    spread = run_cli("plot", "seeds", out, *pinned)
    assert spread.exit_code == 0, spread.output
    assert (out / "figures" / "seed_spread.png").stat().st_size > 1000
    unpinned = run_cli("plot", "seeds", out, "--where", "data.mu=0.1")
    assert (
        unpinned.exit_code == 2
        and "data.rho" in flat(unpinned.output)
        and "pin them" in flat(unpinned.output)
    )


def test_failed_units_are_recorded_skipped_and_retried(tmp_path):
    out = tmp_path / "sweep"
    # data.P = 4 cannot hold the cross-class features smoke draws; on_cap = "error" raises at run time.
    fixed = '[sweep.set]\n"data.n_test" = 500\n"train.max_steps" = 100\n"data.on_cap" = "error"\n'
    spec = write_spec(tmp_path / "fail.toml", out, '"data.P" = [4, 8]', fixed=fixed)
    result = run_cli("sweep", spec, "--quiet")
    assert result.exit_code == 1
    assert "DataError" in result.output and "data.P=4" in result.output
    store = SweepStore(out)
    states = {store.info(k)["params"]["data.P"]: store.state(k) for k in store.keys()}
    assert states == {4: "failed", 8: "done"}
    bad = next(k for k in store.keys() if store.state(k) == "failed")
    assert "DataError" in store.info(bad)["traceback"]

    skipped = run_cli("sweep", spec, "--quiet")
    assert skipped.exit_code == 0 and "failed 1 (skipped" in flat(skipped.output)
    assert _events(store, "start").count(bad) == 1

    retried = run_cli("sweep", spec, "--quiet", "--retry-failed")
    assert retried.exit_code == 1
    assert _events(store, "start").count(bad) == 2 and store.info(bad)["attempts"] == 2
    assert len(build_table(out)) == 1
    assert len(build_table(out, include_unfinished=True)) == 2


def test_process_pool_runs_units_in_parallel_workers(tmp_path):
    out = tmp_path / "sweep"
    spec = write_spec(tmp_path / "pool.toml", out, '"data.mu" = [0.1, 0.2]', local="workers = 2\nthreads = 1")
    result = run_cli("sweep", spec, "--quiet")
    assert result.exit_code == 0, result.output
    assert "2 worker(s)" in flat(result.output)
    store = SweepStore(out)
    assert all(store.is_done(k) for k in store.keys()) and len(store.keys()) == 2
    pids = {e["pid"] for e in store.events() if e["event"] == "done"}
    assert os.getpid() not in pids  # the units ran in the pool's worker processes


def test_dry_run_lists_states_and_writes_nothing_and_a_sweep_folder_resumes(tmp_path):
    out = tmp_path / "sweep"
    spec = write_spec(tmp_path / "s.toml", out, '"data.mu" = [0.1, 0.2]', seeds="[0]")
    dry = run_cli("sweep", spec, "--dry-run")
    assert dry.exit_code == 0 and dry.output.count("pending") == 2
    assert "nothing was written" in dry.output and not out.exists()
    assert run_cli("sweep", spec, "--quiet", "--threads", "1").exit_code == 0
    assert json.loads((out / "plan.json").read_text())["swept_keys"] == ["data.mu"]
    done = {k: SweepStore(out).results_path(k).stat().st_mtime_ns for k in SweepStore(out).keys()}
    again = run_cli("sweep", out, "--dry-run")  # the sweep folder stands for its spec
    assert again.exit_code == 0 and flat(again.output).count(" done") >= 2
    assert run_cli("sweep", out, "--quiet").exit_code == 0
    assert {k: SweepStore(out).results_path(k).stat().st_mtime_ns for k in done} == done


def test_a_unit_whose_attempt_stopped_after_its_results_is_recorded_done(tmp_path):
    from multiview.sweep.plan import plan
    from multiview.sweep.runner import run_unit
    from multiview.sweep.spec import load_spec

    out = tmp_path / "sweep"
    spec = load_spec(write_spec(tmp_path / "one.toml", out, '"data.mu" = [0.1]'))
    store = SweepStore(out)
    (unit,) = plan(spec, store).run
    assert run_unit(out, unit, "cpu", 1).state == "done"
    # as if the task were requeued between writing results.json and recording the unit as done
    store.write_info(unit, "running", slurm_job="7_0", host="node1")
    assert run_unit(out, unit, "cpu", 1).state == "cached"
    info = store.info(unit.key)
    assert (info["state"], info["slurm_job"], info["host"]) == ("done", "7_0", "node1")
    assert [e.get("recorded_later") for e in store.events() if e["event"] == "done"] == [None, True]
