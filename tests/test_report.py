"""Tables of a run's results: one row per method, the same rows in the markdown summary."""

from __future__ import annotations

import pytest
from rich.console import Console

from multiview.report import markdown_summary, method_rows, print_report


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
    assert "| single_model | 0.0500 | 0.500 | pass |" in text


def test_print_report(results):
    console = Console(record=True, width=160)
    print_report(results, console)
    out = console.export_text()
    assert "knowledge distillation" in out and "NTK: ensemble" in out and "Theorem checks" in out
