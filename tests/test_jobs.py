"""Stages side by side in worker processes (``jobs`` > 1): the numbers of one process, resume,
reports, and the worker's checks. (Kept apart from test_protocol.py: these tests start processes,
and the science core's mutation testing runs test_protocol.py for every mutant.)"""

from __future__ import annotations

import json

import pytest
import torch

from multiview import stages
from multiview.config import get_preset
from multiview.progress import Reporter
from multiview.protocol import run_protocol


def _cfg():
    return get_preset("smoke").with_overrides({"protocol.stages": "single,ensemble,kd,ensemble_of_kd"})


class Recording(Reporter):
    """Every report, in order: (hook, stage)."""

    def __init__(self):
        self.seen = []

    def stage_started(self, stage, total):
        self.seen.append(("started", stage))

    def step(self, stage, step, total, active, loss):
        self.seen.append(("step", stage))

    def stage_finished(self, stage, seconds, cached=False):
        self.seen.append(("cached" if cached else "finished", stage))


def _compare():
    """scripts/compare_results.py as a module."""
    import importlib.util
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "compare_results.py"
    spec = importlib.util.spec_from_file_location("compare_results", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _same_run(a: dict, b: dict) -> None:
    """Two results agree on every number (scripts/compare_results.py: all but seconds and the
    machine's fields), their keys in the same order."""
    assert list(a) == list(b) and list(a["timing"]) == list(b["timing"])
    diffs, count = _compare().differences(a, b)
    assert diffs == [] and count > 100


def test_stages_side_by_side_give_the_numbers_of_one_process(tmp_path):
    """The whole smoke protocol in two worker processes: every value of the results and every
    checkpoint tensor as in one process; the stages in registry order; every stage reported
    once, with its trainings' steps reaching this process's reporter."""
    cfg = get_preset("smoke")
    one = run_protocol(cfg, out_dir=tmp_path / "one")
    rec = Recording()
    two = run_protocol(cfg, out_dir=tmp_path / "two", reporter=rec, jobs=2)
    _same_run(one, two)
    assert list(two["timing"]) == ["data", *stages.names(stages.SYNTHETIC), "total"]
    assert two["environment"]["jobs"] == 2 and two["environment"]["threads_per_job"] >= 1
    assert sorted(s for hook, s in rec.seen if hook == "finished") == sorted(stages.names(stages.SYNTHETIC))
    assert ("started", "single") in rec.seen and ("step", "single") in rec.seen
    diffs, count = _compare().checkpoint_differences(tmp_path / "one", tmp_path / "two", 0.0)
    assert diffs == [] and count > 10_000
    assert json.loads((tmp_path / "two" / "results.json").read_text())["complete"] is True


def test_side_by_side_without_a_folder_and_on_resume(tmp_path):
    """Without an output folder the stages meet in a temporary one (gone afterwards); a resumed
    run loads the stages whose checkpoints match here and hands out only the rest."""
    cfg = _cfg()
    alone = run_protocol(cfg, jobs=2)
    full = run_protocol(cfg, out_dir=tmp_path)
    _same_run(alone, full)
    (tmp_path / "stages" / "kd.pt").unlink()
    (tmp_path / "stages" / "ensemble_of_kd.pt").unlink()
    rec = Recording()
    resumed = run_protocol(cfg, out_dir=tmp_path, resume=True, reporter=rec, jobs=2)
    assert [s for hook, s in rec.seen if hook == "cached"] == ["single", "ensemble"]
    assert [s for hook, s in rec.seen if hook == "finished"] == ["kd", "ensemble_of_kd"]
    _same_run(full, resumed)


def test_a_worker_refuses_a_checkpoint_of_another_run(tmp_path):
    """A stage in a worker reads what it needs from checkpoints keyed to the run: another key
    (or none) is refused by name; a config the worker does not rebuild exactly is refused too."""
    from multiview import driver
    from multiview.protocol import SimulationDriver, worker_driver

    cfg = _cfg()
    run_protocol(cfg.with_overrides({"protocol.stages": "single"}), out_dir=tmp_path)
    folder = tmp_path / "stages"
    args = (cfg.to_dict(), "cpu")
    driver._WORKER.clear()
    part, seconds = driver.compute_in_worker(worker_driver, args, cfg.config_hash(), folder, "ensemble")
    alone = run_protocol(cfg.with_overrides({"protocol.stages": "ensemble"}))["ensemble"]
    assert seconds > 0 and _compare().differences(part, alone)[0] == []
    assert (folder / "ensemble.pt").exists()
    single = driver.load_tensors(folder / "single.pt")
    driver.save_tensors(folder / "single.pt", {**single, "config_hash": "x"})
    driver._WORKER.clear()
    with pytest.raises(RuntimeError, match="single.pt: the checkpoint of single is not this run's"):
        driver.compute_in_worker(worker_driver, args, cfg.config_hash(), folder, "kd")
    (folder / "single.pt").unlink()
    driver._WORKER.clear()
    with pytest.raises(RuntimeError, match="single.pt: the checkpoint of single is not this run's"):
        driver.compute_in_worker(worker_driver, args, cfg.config_hash(), folder, "kd")
    driver._WORKER.clear()
    with pytest.raises(RuntimeError, match="another config"):
        driver.compute_in_worker(worker_driver, args, "not the hash", folder, "kd")
    driver._WORKER.clear()
    with pytest.raises(ValueError, match="jobs = 0"):
        SimulationDriver(cfg, torch.device("cpu"), None, False, None, jobs=0)
