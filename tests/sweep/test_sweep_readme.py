"""The README's five lines: a sweep loaded as one table, err/μ drawn with error bars over master seeds."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from sweep_helpers import run_cli, write_spec

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_snippet() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    (snippet,) = [b for b in blocks if "error_bars_figure" in b]
    return snippet


def test_the_readme_snippet_draws_err_over_mu_with_error_bars(tmp_path, monkeypatch):
    snippet = readme_snippet()
    assert len(snippet.strip().splitlines()) == 5
    out = tmp_path / "mu_rho_demo"
    spec = write_spec(tmp_path / "s.toml", out, '"data.mu" = [0.1, 0.2]\n"data.rho" = [0.1]', seeds="[0, 1]")
    assert run_cli("sweep", spec, "--quiet").exit_code == 0
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(snippet.replace("runs/sweeps/mu_rho_demo", str(out)), namespace)
    assert (tmp_path / "err_over_mu.png").stat().st_size > 1000
    summary = namespace["summary"]
    assert set(summary.method) == {"single", "ensemble"} and set(summary.n) == {2}
    assert set(summary.over) == {"master seeds"}
    # the mean of single models at μ = 0.1: each master seed's models averaged, then the two seeds
    units = pd.concat([pd.read_csv(p) for p in out.glob("units/*/tidy.csv")])
    rows = units.query("method == 'single' and stratum == 'all' and `data.mu` == 0.1")
    per_seed = rows.groupby("seed").error_over_mu.mean()
    got = summary.query("method == 'single' and `data.mu` == 0.1").iloc[0]
    assert got["mean"] == pytest.approx(per_seed.mean())
    assert got["low"] < got["mean"] < got["high"] or per_seed.nunique() == 1
