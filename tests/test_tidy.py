"""The tidy table of a run: one row per model × method × stratum, written beside results.json."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from multiview import tidy
from multiview.config import get_preset
from multiview.protocol import run_protocol
from multiview.stats import bootstrap_interval, seed_interval
from multiview.tidy import ROW_COLUMNS, tidy_frame, tidy_rows


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = get_preset("smoke").with_overrides(
        {
            "protocol.stages": "single,ensemble,kd,random_features",
            "data.n_test": 600,
            "protocol.baseline_steps": 20,
        }
    )
    run_protocol(cfg, out_dir=out, labels={"data.mu": 0.1})
    return out


def test_rows_hold_each_models_error_views_and_training(run_dir):
    results = json.loads((run_dir / "results.json").read_text())
    df = tidy_frame(results)
    assert list(df.columns) == ["run", "seed", *ROW_COLUMNS]
    S, mu = results["config"]["n_seeds"], results["config"]["data"]["mu"]
    # S singles, 1 ensemble, S students; the RF family: S singles, 1 ensemble, 1 average, S students
    sizes = df[df.stratum == "all"].groupby(["learner", "method"], sort=False).size()
    assert sizes.to_dict() == {
        ("cnn", "single"): S,
        ("cnn", "ensemble"): 1,
        ("cnn", "kd"): S,
        ("random_features", "single"): S,
        ("random_features", "ensemble"): 1,
        ("random_features", "training_average"): 1,
        ("random_features", "kd"): S,
    }
    assert len(df) == 3 * sizes.sum() and set(df.stratum) == {"all", "multi_view", "single_view"}
    assert (df.run == results["config_hash"]).all() and (df.seed == results["config"]["seed"]).all()

    single = df[(df.learner == "cnn") & (df.method == "single")].set_index(["model", "stratum"])
    part = results["single"]
    for r in range(S):
        for stratum in ("all", "multi_view", "single_view"):
            row = single.loc[(r, stratum)]
            assert row.error == part["test_error"][stratum][r]
            assert row.error_over_mu == pytest.approx(part["test_error"][stratum][r] / mu)
        learned = part["views"]["learned"][r]
        both = sum(all(v) for v in learned) / len(learned)
        none = sum(not any(v) for v in learned) / len(learned)
        row = single.loc[(r, "all")]
        assert (row.views_both, row.views_none) == (both, none)
        assert row.views_one == pytest.approx(1 - both - none)
        assert row.steps == part["steps"][r] and row.converged == part["converged"][r]
        assert row.stopped_by == part["stopped_by"][r] and row.flow_time == part["flow_time"][r]
        assert row.train_accuracy == part["train_accuracy"][r] and row.final_loss == part["final_loss"][r]
    data = results["data"]
    assert single.loc[(0, "single_view")].n_examples == data["test_single_view"]
    assert single.loc[(0, "multi_view")].n_examples == data["n_test"] - data["test_single_view"]

    ensemble = df[(df.learner == "cnn") & (df.method == "ensemble") & (df.stratum == "all")].iloc[0]
    assert pd.isna(ensemble.converged) and pd.isna(ensemble.steps) and pd.isna(ensemble.stopped_by)
    models = part["views"]["learned"]
    union = [[any(m[i][v] for m in models) for v in (0, 1)] for i in range(len(models[0]))]
    assert ensemble.views_both == sum(all(v) for v in union) / len(union)  # the members' union
    rf = df[df.learner == "random_features"]
    assert rf.views_both.isna().all()  # the fixed-feature baselines measure no views
    assert df.dtypes["steps"] == "Int64" and df.dtypes["converged"] == "boolean"


def test_the_run_writes_its_table_as_csv_and_parquet(run_dir):
    results = json.loads((run_dir / "results.json").read_text())
    expected = tidy_frame(results, {"data.mu": 0.1})
    assert list(expected.columns[:3]) == ["run", "seed", "data.mu"]
    from_parquet = pd.read_parquet(run_dir / "tidy.parquet")
    pd.testing.assert_frame_equal(from_parquet, expected)
    from_csv = pd.read_csv(run_dir / "tidy.csv")
    assert len(from_csv) == len(expected) and list(from_csv.columns) == list(expected.columns)
    assert from_csv.error.tolist() == expected.error.tolist()


def test_without_pyarrow_only_csv_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(tidy, "have_parquet", lambda: False)
    df = tidy.frame([{"run": "a", "seed": 0, "learner": "cnn", "method": "single", "error": 0.25}])
    assert tidy.write_tidy(tmp_path, df) == [tmp_path / "tidy.csv"]
    assert not (tmp_path / "tidy.parquet").exists()
    with pytest.raises(ValueError, match="Parquet needs pyarrow"):
        tidy.write_table(df, tmp_path / "t", ("csv", "parquet"))
    assert not (tmp_path / "t.csv").exists()  # every format is checked before anything is written


def test_a_cifar_run_has_one_stratum_and_no_mu():
    results = {
        "mode": "cifar",
        "config_hash": "c1",
        "config": {"seed": 3, "model": {"arch": "fast"}},
        "data": {"n_test_used": 200},
        "single": {
            "test_accuracy": [0.9, 0.8],
            "test_error": {"all": [0.1, 0.2]},
            "steps": [50, 50],
            "train_accuracy": [0.95, 0.97],
            "final_train_loss": [0.3, 0.2],
        },
        "ensemble": {"test_accuracy": [0.92], "test_error": {"all": [0.08]}},
        "overlap": {"pairs": []},
    }
    rows = tidy_rows(results)
    assert [(r["method"], r["model"], r["stratum"], r["error"]) for r in rows] == [
        ("single", 0, "all", 0.1),
        ("single", 1, "all", 0.2),
        ("ensemble", 0, "all", 0.08),
    ]
    assert {r["learner"] for r in rows} == {"fast"} and {r["seed"] for r in rows} == {3}
    assert rows[1]["final_loss"] == 0.2 and rows[1]["steps"] == 50 and rows[0]["n_examples"] == 200
    assert all(r["error_over_mu"] != r["error_over_mu"] for r in rows)  # NaN: CIFAR has no μ


def test_an_empty_run_has_the_columns():
    assert list(tidy_frame({"config": {}}).columns) == ["run", "seed", *ROW_COLUMNS]


def test_summaries_are_over_master_seeds_where_there_are_several():
    rows = [
        {"run": f"r{seed}", "seed": seed, "method": "kd", "model": model, "error_over_mu": value}
        for seed, values in ((0, [0.1, 0.3]), (1, [0.5, 0.5]), (2, [0.2, 0.4]))
        for model, value in enumerate(values)
    ]
    df = tidy.frame(rows)
    (row,) = tidy.summarize(df, by=["method"]).to_dict("records")
    means = [0.2, 0.5, 0.3]  # each master seed's models averaged first
    assert row["mean"] == pytest.approx(sum(means) / 3) and row["n"] == 3 and row["over"] == "master seeds"
    assert [row["low"], row["high"]] == pytest.approx(seed_interval(means))
    (boot,) = tidy.summarize(df, by=["method"], interval="bootstrap").to_dict("records")
    assert [boot["low"], boot["high"]] == pytest.approx(bootstrap_interval(means))
    (one,) = tidy.summarize(df[df.seed == 0], by=["method"]).to_dict("records")
    assert (
        one["over"] == "models"
        and one["n"] == 2
        and [one["low"], one["high"]] == pytest.approx(seed_interval([0.1, 0.3]))
    )
    with pytest.raises(ValueError, match="use t or bootstrap"):
        tidy.summarize(df, interval="normal")
