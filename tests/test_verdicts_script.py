"""scripts/verdicts.py: the theorem checks of several runs side by side."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "verdicts.py"


def _module():
    spec = importlib.util.spec_from_file_location("verdicts", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _run(seed: int, bounds: list[dict]) -> dict:
    return {"config": {"seed": seed, "data": {"mu": 0.1}}, "bounds": bounds}


def _error(name: str, over_mu: float, passed: bool) -> dict:
    return {
        "name": name,
        "claim": f"claim of {name}",
        "measured": over_mu * 0.1,
        "measured_over_mu": over_mu,
        "bound": {"high": 0.001},
        "passed": passed,
    }


def test_each_check_lists_every_run_and_counts_the_passes():
    v = _module()
    runs = [
        _run(0, [_error("knowledge_distillation", 0.0001, True), _error("ensemble", 0.013, False)]),
        _run(4, [_error("knowledge_distillation", 0.25, False)]),  # no ensemble check in this run
    ]
    lines = v.table(runs).splitlines()
    assert lines[0] == "| check | bound | measured, master seeds 0, 4 | holds |"
    assert lines[2] == "| claim of knowledge_distillation | < 0.01 | 0.0001, 0.250 | 1 of 2 |"
    assert lines[3] == "| claim of ensemble | < 0.01 | 0.013, – | 0 of 1 |"


def test_fractions_and_gain_rules_read_as_such():
    v = _module()
    one_view = {
        "name": "one_view_per_class",
        "claim": "one view",
        "measured": 0.99,
        "measured_over_mu": None,
        "bound": {"low": 0.9},
        "passed": True,
    }
    rule = "err ≤ err(single) − ½·(err(single) − err(ensemble))"
    gain = {
        **_error("ntk_average_matches_ensemble", 0.0, True),
        "claim": "NTK average",
        "bound": {"rule": rule},
    }
    control = {
        **_error("kd_gain_from_dark_knowledge", 0.0, False),
        "bound": {"rule": "err > err(single) − ½·(err(single) − err(kd))"},
    }
    lines = v.table([_run(1, [one_view, gain, control])]).splitlines()
    assert lines[2] == "| one view | ≥ 90% | 99% | 1 of 1 |"
    assert lines[3] == "| NTK average | ≥ ½ of the ensemble's gain | 0.0000 | 1 of 1 |"
    assert lines[4] == "| claim of kd_gain_from_dark_knowledge | < ½ of KD's gain | 0.0000 | 0 of 1 |"
