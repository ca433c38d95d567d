"""The protocol skeleton: header, config.toml, stages with checkpoints, results after each stage."""

from __future__ import annotations

import json

import pytest
import torch

from multiview import driver, stages
from multiview.config import SimConfig
from multiview.driver import Driver, implements, stage_function
from multiview.progress import Reporter


class Toy(Driver):
    """A driver whose stages compute nothing: each part says how often it was computed."""

    protocol = stages.SYNTHETIC
    computed: list[str]

    def prepare(self):
        self.computed = []
        return {"config": self.cfg.to_dict()}

    def compute(self, stage):
        self.computed.append(stage)
        return {"value": len(self.computed)}, {"stage": stage}

    def checkpoint_key(self, stage):
        return f"key-{stage}-{self.cfg.seed}"

    def summary(self):
        return {"stages_done": [s for s in stages.names(stages.SYNTHETIC) if s in self.results]}


class Finished(Reporter):
    def __init__(self):
        self.seen = []

    def stage_finished(self, stage, seconds, cached=False):
        self.seen.append((stage, cached))


def cfg(seed: int = 0) -> SimConfig:
    return SimConfig().with_overrides({"protocol.stages": "ensemble_of_kd", "seed": seed})


def test_stages_run_in_order_with_their_prerequisites(tmp_path):
    toy = Toy(cfg(), tmp_path, resume=False, reporter=Finished())
    results = toy.run()
    assert toy.computed == ["single", "kd", "ensemble_of_kd"]
    assert list(results)[:3] == ["schema", "config", "single"]
    assert results["stages_done"] == toy.computed and results["complete"] is True
    assert set(results["timing"]) == {"data", "single", "kd", "ensemble_of_kd", "total"}
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["ensemble_of_kd"] == {"value": 3}
    assert (tmp_path / "config.toml").read_text() == cfg().to_toml()
    assert sorted(p.name for p in (tmp_path / "stages").iterdir()) == [
        "ensemble_of_kd.pt",
        "kd.pt",
        "single.pt",
    ]


def test_resume_loads_the_checkpoints_whose_key_matches(tmp_path):
    Toy(cfg(), tmp_path, resume=False, reporter=None).run()
    (tmp_path / "stages" / "kd.pt").unlink()
    rep = Finished()
    toy = Toy(cfg(), tmp_path, resume=True, reporter=rep)
    results = toy.run()
    assert toy.computed == ["kd"]
    assert rep.seen[0] == ("single", True) and ("kd", False) in rep.seen
    other = Toy(cfg(seed=1), tmp_path, resume=True, reporter=None)
    other.run()
    assert other.computed == ["single", "kd", "ensemble_of_kd"]  # another key: computed again
    assert results["complete"] is True


def test_without_a_folder_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Toy(cfg(), None, resume=True, reporter=None).run()
    assert list(tmp_path.iterdir()) == []


def test_stage_functions_are_registered_by_registry_name(monkeypatch):
    import multiview.protocol  # noqa: F401  (registers the simulator's stages)

    assert stage_function(stages.SYNTHETIC, "ntk").__name__ == "stage_ntk"
    with pytest.raises(ValueError, match="unknown stage 'teaching'"):
        implements(stages.SYNTHETIC, "teaching")
    monkeypatch.delitem(driver._FUNCTIONS, (stages.SYNTHETIC, "ntk"))
    with pytest.raises(LookupError, match="stage 'ntk' has no function"):
        stage_function(stages.SYNTHETIC, "ntk")


class Foreign:
    """Not a tensor and not plain data: a checkpoint holding one is refused."""


def test_a_checkpoint_holding_a_foreign_object_is_refused_by_name(tmp_path):
    Toy(cfg(), tmp_path, resume=False, reporter=None).run()
    path = tmp_path / "stages" / "kd.pt"
    saved = driver.load_tensors(path)  # what the stages save reads back under weights_only
    assert saved["config_hash"] == "key-kd-0" and saved["tensors"] == {"stage": "kd"}
    torch.save({**saved, "tensors": {"stage": Foreign()}}, path)
    with pytest.raises(driver.CheckpointError) as err:
        Toy(cfg(), tmp_path, resume=True, reporter=None).run()
    message = str(err.value)
    assert str(path) in message and "refused" in message and f"{__name__}.Foreign" in message
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(driver.CheckpointError, match="kd.pt: not a readable checkpoint"):
        Toy(cfg(), tmp_path, resume=True, reporter=None).run()
