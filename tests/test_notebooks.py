"""The notebooks: committed clean, parameterized for CI, and they run top to bottom (smoke-sized)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = ("01_feature_overlap", "02_learning_dynamics", "03_theorems", "04_phase_diagrams", "05_cifar")


def _runner():
    spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "scripts" / "run_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def test_every_notebook_of_the_issue_is_there():
    names = {p.stem for p in NOTEBOOKS}
    assert set(EXPECTED) <= names, sorted(set(EXPECTED) - names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} have outputs or execution counts (clear them before committing)"
    )
    assert not any(c.get("attachments") for c in nb.cells), f"{path.name}: cell attachments"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_come_first_with_a_smoke_switch(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[[c.cell_type for c in nb.cells].index("code")]
    assert "parameters" in first.metadata.get("tags", []), (
        f"{path.name}: first code cell is not tagged 'parameters''"
    )
    assert 'SMOKE = os.environ.get("MULTIVIEW_NOTEBOOK_SMOKE") == "1"' in first.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_cells_call_the_library_instead_of_training(path):
    source = "\n".join(_code(nbformat.read(path, as_version=4)))
    for pattern in (r"\.backward\(", r"torch\.optim", r"\.zero_grad\(", r"^\s*class\s", r"def\s+train"):
        assert not re.search(pattern, source, re.M), f"{path.name}: training code in a cell ({pattern})"
    assert "from multiview" in source


def test_runner_finds_notebooks_by_prefix():
    runner = _runner()
    assert [p.name for p in runner.find_notebooks(["01"])] == ["01_feature_overlap.ipynb"]
    assert runner.find_notebooks() == NOTEBOOKS
    with pytest.raises(SystemExit):
        runner.find_notebooks(["99"])


@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path):
    """Executes the smoke-sized notebook in a fresh kernel; fails if any cell raises."""
    runner = _runner()
    work = tmp_path / "notebooks"
    work.mkdir()
    copy = work / path.name
    copy.write_bytes(path.read_bytes())
    run = runner.execute(copy, work, smoke=True)
    assert run.ok, run.error
    assert run.images >= 1, f"{path.name} displayed no figure"
    assert list((work / "runs" / "figures").rglob("*.png")), "no figure saved under the notebook's folder"
