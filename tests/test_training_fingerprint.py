"""scripts/training_fingerprint.py: a few steps' numbers saved, and compared bit for bit."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "training_fingerprint.py"


def _module():
    spec = importlib.util.spec_from_file_location("training_fingerprint", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_same_code_gives_the_same_bits_and_a_change_is_found(tmp_path, capsys):
    fp = _module()
    first, second = fp.fingerprint("smoke", 3), fp.fingerprint("smoke", 3)
    names = {"single", "practical KD", "theory KD"}
    assert set(first) == {
        f"{n} {part}" for n in names for part in ("weights", "losses", "accuracies", "final accuracy")
    }
    assert fp.compare(first, second)
    changed = dict(second)
    changed["theory KD weights"] = second["theory KD weights"].clone()
    changed["theory KD weights"].view(-1)[5] = torch.nextafter(
        changed["theory KD weights"].view(-1)[5], torch.tensor(float("inf"))
    )
    assert not fp.compare(first, changed)
    assert "theory KD weights (" in capsys.readouterr().out.split("DIFFERENT")[0].splitlines()[-1]
    signed = dict(second)
    signed["single losses"] = second["single losses"].clone()
    signed["single losses"].view(-1)[0] = 0.0
    negative = dict(signed)
    negative["single losses"] = signed["single losses"].clone()
    negative["single losses"].view(-1)[0] = -0.0
    assert not fp.compare(signed, negative)  # −0 and +0 differ
    assert not fp.compare(first, {k: v for k, v in first.items() if k != "single weights"})


def test_the_command_saves_and_compares(tmp_path):
    out = tmp_path / "a.pt"
    run = [sys.executable, str(SCRIPT)]
    assert subprocess.run([*run, "smoke", "2", str(out)], capture_output=True, text=True).returncode == 0
    same = subprocess.run([*run, "--compare", str(out), str(out)], capture_output=True, text=True)
    assert same.returncode == 0 and "DIFFERENT" not in same.stdout
    bad = subprocess.run([*run, "smoke", "0", str(tmp_path / "b.pt")], capture_output=True, text=True)
    assert bad.returncode == 2 and "STEPS must be at least 1, got 0" in bad.stderr
    assert not (tmp_path / "b.pt").exists()
