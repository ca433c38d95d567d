"""Tables of a run's results: one row per method, the same rows in the markdown summary."""

from __future__ import annotations

import pytest
from rich.console import Console

from multiview.report import markdown_summary, method_rows, print_report, training_status


def _part(err: float, views: bool = True) -> dict:
    part = {"test_error": {"all": [err, err], "multi_view": [0.0, 0.0], "single_view": [err, None]}}
    if views:
        part["views"] = {"exactly_one_fraction": 1.0, "both_fraction": 0.0, "none_fraction": 0.0}
    return part


@pytest.fixture()
def results() -> dict:
    return {
        "config": {"data": {"mu": 0.1}},
        "single": {
            **_part(0.05),
            "train_accuracy": [1.0, 1.0],
            "views": {
                "learned": [[[True, False]], [[True, True]]],
                "exactly_one_fraction": 1.0,
                "both_fraction": 0.0,
                "none_fraction": 0.0,
            },
        },
        "kd": _part(0.04),
        "ntk": {"single": _part(0.2, views=False), "ensemble": _part(0.1, views=False)},
        "bounds": [
            {
                "name": "single_model",
                "claim": "Thm 1",
                "measured": 0.05,
                "measured_over_mu": 0.5,
                "bound": {"low": 0.049, "high": 0.051},
                "ci95": {"binomial": [0.04, 0.06], "seeds": None},
                "passed": True,
            }
        ],
        "timing": {"single": 1.0, "total": 2.0},
    }


def test_rows_follow_the_registry_with_the_baselines_last(results):
    labels = [label for label, _ in method_rows(results)]
    assert labels == ["single models", "knowledge distillation", "NTK: single models", "NTK: ensemble"]


def test_markdown_has_the_same_rows_and_the_verdicts(results):
    text = markdown_summary(results, "run")
    for label, _ in method_rows(results):
        assert f"| {label} |" in text
    assert "| single models | 0.0500 | 0.500 | 0.0500 | 1.00/0.00/0.00 |" in text
    assert "| NTK: ensemble | 0.1000 | 1.000 | 0.1000 | – |" in text
    assert "| Thm 1 | single_model | 0.0500 | 0.500 | pass |" in text
    assert "| method | err (raw) |" in text and "partial run" not in text


def test_print_report(results):
    console = Console(record=True, width=160)
    print_report(results, console)
    out = console.export_text()
    assert "knowledge distillation" in out and "NTK: ensemble" in out and "Theorem checks" in out


def _text(results: dict, **kwargs) -> str:
    console = Console(record=True, width=200)
    print_report(results, console, **kwargs)
    return " ".join(console.export_text().split())


def test_checks_carry_their_theorem_and_a_failed_one_points_to_its_explanation(results):
    results["bounds"].append(
        {
            "name": "knowledge_distillation",
            "claim": "Thm 3: a student distilled from the ensemble has err < 0.01μ",
            "measured": 0.04,
            "measured_over_mu": 0.4,
            "bound": {"high": 0.001},
            "ci95": {"binomial": [0.035, 0.045], "seeds": [0.03, 0.05]},
            "passed": False,
            "raw": 0.041,
        }
    )
    out = _text(results)
    assert "Thm 1" in out and "Thm 3" in out and "FAIL" in out and "pass" in out
    assert "0.0400 [0.0350, 0.0450]" in out and "stratified; raw 0.0410" in out
    assert "see docs/kd.md: why KD falls short here" in out
    assert out.count("see docs/") == 1  # the check that passed points nowhere
    assert "err (stratified)" in out and "err (raw)" in out  # both errors named, and the difference explained


def test_training_status_flags_runs_that_ran_out_of_steps():
    stuck = {"stopped_by": ["max_steps", "max_steps"], "steps": [3000, 3000], "max_steps": 3000,
             "loss_threshold": 1e-3, "not_converged": 2}  # fmt: skip
    assert "3000/3000 steps, not converged (2 of 2)" in training_status(stuck)
    assert training_status({"stopped_by": ["loss_threshold"] * 2, "steps": [40, 52]}) == "converged"
    horizon = {"stopped_by": ["flow_time", "flow_time"], "steps": [90, 95], "not_converged": 0}
    assert training_status(horizon) == "flow-time horizon"  # a planned stop, not a failure
    budget = {
        "stopped_by": ["max_steps"],
        "steps": [500],
        "max_steps": 500,
        "loss_threshold": 0.0,
        "not_converged": 0,
    }
    assert training_status(budget) == "500 steps (no loss threshold)"
    assert training_status({"test_error": {}}) == ""  # an ensemble trains nothing


def test_unconverged_students_are_flagged_in_both_tables(results):
    results["kd"].update(
        {"stopped_by": ["max_steps", "loss_threshold"], "steps": [3000, 1200], "max_steps": 3000,
         "loss_threshold": 1e-3, "not_converged": 1}
    )  # fmt: skip
    results["bounds"].append(
        {"name": "knowledge_distillation", "claim": "Thm 3: …", "measured": 0.04, "measured_over_mu": 0.4,
         "bound": {"high": 0.001}, "ci95": {}, "passed": False, "stage": "kd"}
    )  # fmt: skip
    out = _text(results)
    assert "3000/3000 steps, not converged (1 of 2); converged 1 of 2" in out
    assert "1 of 2 models not converged" in out


def test_a_partial_run_is_announced_with_the_command_that_finishes_it(results, tmp_path):
    results["complete"] = False
    results["config"]["protocol"] = {"stages": ["single", "ensemble", "kd"]}
    out = _text(results, source=tmp_path / "results.json")
    assert out.count("PARTIAL RUN (complete: false)") == 2  # above and below the tables
    assert "stages finished: single, kd" in out and "not run yet: ensemble" in out
    assert f"multiview simulate --config {tmp_path / 'config.toml'} --out {tmp_path} --resume" in out
    assert "partial run" in markdown_summary(results)
    results["complete"] = True
    assert "PARTIAL RUN" not in _text(results)
