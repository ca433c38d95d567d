"""The Python API: multiview.simulate, multiview.load, and an import that stays light."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

import multiview
from multiview.files import FileFormatError
from multiview.settings import ConfigError

SMALL = {"stages": "single,ensemble", "data__n_test": 500, "train.max_steps": 60}


def test_importing_the_package_loads_neither_torch_nor_pandas():
    code = (
        "import os, sys, multiview\n"
        "assert os.environ['THP_MEM_ALLOC_ENABLE'] == '1'\n"
        "print('torch' in sys.modules, 'pandas' in sys.modules, callable(multiview.simulate))\n"
        "print(multiview.__version__)"
    )
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    torch_loaded, pandas_loaded, api, version = out.stdout.split()
    assert (torch_loaded, pandas_loaded, api) == ("False", "False", "True")
    assert version == multiview.__version__ != "unknown"


@pytest.mark.parametrize("setting", ["1", "0"])
def test_importing_the_package_asks_glibc_to_keep_freed_memory(monkeypatch, setting):
    """Large blocks from the heap (M_MMAP_THRESHOLD, −3) and no trimming (M_TRIM_THRESHOLD, −1),
    unless MULTIVIEW_KEEP_FREED_MEMORY=0."""
    calls = []

    class Libc:
        def mallopt(self, param: int, value: int) -> int:
            calls.append((param, value))
            return 1

    monkeypatch.setenv("MULTIVIEW_KEEP_FREED_MEMORY", setting)
    monkeypatch.setattr(multiview.ctypes, "CDLL", lambda name: Libc() if name == "libc.so.6" else None)
    multiview._keep_freed_memory()
    assert calls == ([(-3, 1 << 30), (-1, 2**31 - 1)] if setting == "1" else [])


def test_simulate_returns_results_with_a_tidy_table(tmp_path):
    res = multiview.simulate(preset="smoke", out=tmp_path / "run", device="cpu", mu=0.2, **SMALL)
    assert isinstance(res, multiview.Results) and res.path == tmp_path / "run"
    assert res.config["data"]["mu"] == 0.2 and res.config["data"]["n_test"] == 500
    assert res.config["protocol"]["stages"] == ["single", "ensemble"]
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["single"]["test_error"] == res.results["single"]["test_error"]
    tidy = res.tidy
    assert set(tidy.method) == {"single", "ensemble"}
    singles = tidy[(tidy.method == "single") & (tidy.stratum == "all")]
    assert singles.error.tolist() == res.results["single"]["test_error"]["all"]
    assert singles.error_over_mu.tolist() == pytest.approx([e / 0.2 for e in singles.error])
    assert {"single_model", "ensemble"} <= set(res.bounds.check)
    assert "Results(config_hash=" in repr(res)
    # the folder reads back as the same table
    pd.testing.assert_frame_equal(multiview.load(tmp_path / "run"), tidy)
    pd.testing.assert_frame_equal(multiview.load(tmp_path / "run" / "results.json"), tidy)


def test_simulate_without_a_folder_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = multiview.simulate("smoke", device="cpu", **SMALL)
    assert res.path is None and list(tmp_path.iterdir()) == []
    assert len(res.tidy) == 3 * (res.config["n_seeds"] + 1)


def test_bad_overrides_are_named(tmp_path):
    with pytest.raises(ConfigError, match="nope"):
        multiview.simulate("smoke", nope=1)
    with pytest.raises(ConfigError, match="data.mu"):
        multiview.simulate("smoke", data__mu=2.0)


def test_load_names_what_it_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a run folder .* nor a sweep folder"):
        multiview.load(tmp_path)
    (tmp_path / "results.json").write_text('{"a": 1}')
    with pytest.raises(FileFormatError, match="not a results.json of multiview"):
        multiview.load(tmp_path)


def test_simulate_runs_its_stages_side_by_side_when_asked(tmp_path):
    """``jobs=2``: two worker processes; every number as in one process."""
    one = multiview.simulate("smoke", **SMALL)
    two = multiview.simulate("smoke", jobs=2, out=tmp_path, **SMALL)
    assert two.results["environment"]["jobs"] == 2
    assert two.results["single"]["test_error"] == one.results["single"]["test_error"]
    assert json.dumps(two.results["views"]) == json.dumps(one.results["views"])  # NaN as NaN
