"""scripts/compare_results.py: every number of two runs, timings and host fields left out."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_results.py"


def _module():
    spec = importlib.util.spec_from_file_location("compare_results", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_differences_name_every_changed_value():
    cmp = _module()
    a = {
        "x": [1.0, 2.0],
        "y": {"z": "s"},
        "timing": {"total": 1.0},
        "environment": {"threads": 2, "device": "cpu"},
    }
    b = {
        "x": [1.0, 2.5],
        "y": {"z": "s", "w": 1},
        "timing": {"total": 9.0},
        "environment": {"threads": 8, "device": "cuda"},
    }
    diff, count = cmp.differences(a, b)
    assert diff == ["x.1: 2.0 != 2.5", "y.w: only in B", "environment.device: 'cpu' != 'cuda'"]
    assert count == 5
    assert cmp.differences({"train_seconds": 1}, {"train_seconds": 2}) == ([], 0)
    assert cmp.differences([1.0], [1.0 + 1e-12], rtol=1e-9)[0] == []
    assert cmp.differences([1, 2], [1])[0] == [": 2 items != 1 items".replace(":", "(top):")]


def test_runs_compared_from_the_command_line(tmp_path, capsys):
    cmp = _module()
    for name, value in (("a", 0.1), ("b", 0.1), ("c", 0.2)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps({"single": {"err": value}}))
    assert cmp.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert cmp.main([str(tmp_path / "a"), str(tmp_path / "c" / "results.json")]) == 1
    assert "single.err: 0.1 != 0.2" in capsys.readouterr().out
