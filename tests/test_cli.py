"""`multiview simulate` end to end through typer's test runner, and its errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from multiview.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    result = runner.invoke(
        app, ["simulate", "--preset", "smoke", "--out", str(out), "--device", "cpu", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    return out, result.output


def test_simulate_writes_results_with_the_documented_keys(smoke_run):
    out, output = smoke_run
    res = json.loads((out / "results.json").read_text())
    S = res["config"]["n_seeds"]
    k = res["config"]["data"]["k"]
    for key in ("all", "multi_view", "single_view"):
        assert len(res["single"]["test_error"][key]) == S
    assert len(res["single"]["train_accuracy"]) == S
    learned = res["views"]["learned"]
    assert len(learned) == S and len(learned[0]) == k and len(learned[0][0]) == 2
    assert 0.0 <= res["views"]["exactly_one_fraction"] <= 1.0
    assert 0.0 <= res["views"]["lottery_agreement"] <= 1.0
    assert res["timing"]["total"] > 0
    for stage in (
        "ensemble",
        "training_average",
        "kd",
        "self_kd",
        "ensemble_of_kd",
        "random_features",
        "ntk",
    ):
        assert stage in res, stage
    names = {b["name"] for b in res["bounds"]}
    assert {"single_model", "ensemble", "knowledge_distillation", "self_distillation"} <= names
    for b in res["bounds"]:
        assert {"name", "claim", "measured", "measured_over_mu", "bound", "ci95", "passed"} <= set(b)
    assert (out / "config.toml").exists()
    assert "Theorem checks" in output and "Single models" in output


def test_config_saved_with_results_reproduces_the_run(smoke_run, tmp_path):
    out, _ = smoke_run
    again = tmp_path / "again"
    result = runner.invoke(
        app,
        [
            "simulate",
            "--config",
            str(out / "config.toml"),
            "--only",
            "single",
            "--out",
            str(again),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    a = json.loads((out / "results.json").read_text())
    b = json.loads((again / "results.json").read_text())
    assert a["single"]["test_error"] == b["single"]["test_error"]
    assert a["views"]["learned"] == b["views"]["learned"]


def test_bad_set_is_a_clear_error(tmp_path):
    result = runner.invoke(
        app, ["simulate", "--preset", "smoke", "--set", "data.mu=7", "--out", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert "data.mu" in result.output and "[0.0, 1.0]" in result.output


def test_unknown_preset_and_stage(tmp_path):
    result = runner.invoke(app, ["simulate", "--preset", "nope", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "unknown preset" in result.output
    result = runner.invoke(
        app, ["simulate", "--preset", "smoke", "--only", "single,magic", "--out", str(tmp_path)]
    )
    assert result.exit_code != 0 and "protocol.stages" in result.output


def test_presets_and_config_commands():
    result = runner.invoke(app, ["presets"])
    assert result.exit_code == 0 and "paper" in result.output and "smoke" in result.output
    result = runner.invoke(app, ["config", "--preset", "smoke", "--set", "data.mu=0.3"])
    assert result.exit_code == 0 and "mu = 0.3" in result.output


def test_piped_output_gets_wide_tables(monkeypatch, capsys):
    from multiview.terminal import PIPED_WIDTH, make_console

    monkeypatch.delenv("COLUMNS", raising=False)
    assert make_console().width == PIPED_WIDTH  # pytest captures stdout: not a terminal
    monkeypatch.setenv("COLUMNS", "100")
    assert make_console().width == 100
