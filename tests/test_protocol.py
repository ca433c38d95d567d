"""The protocol: determinism, resume without recomputation, atomic results."""

from __future__ import annotations

import json

import pytest

from multiview import stages
from multiview.config import get_preset
from multiview.progress import Reporter
from multiview.protocol import run_protocol


class Counting(Reporter):
    def __init__(self):
        self.computed = []
        self.cached = []

    def stage_finished(self, name, seconds, cached=False):
        (self.cached if cached else self.computed).append(name)


def _cfg():
    return get_preset("smoke").with_overrides({"protocol.stages": "single,ensemble,kd,ensemble_of_kd"})


def test_same_config_same_numbers(tmp_path):
    a = run_protocol(_cfg(), out_dir=tmp_path / "a")
    b = run_protocol(_cfg(), out_dir=tmp_path / "b")
    for key in ("single", "ensemble", "kd", "ensemble_of_kd"):
        assert a[key]["test_error"] == b[key]["test_error"], key
    assert a["views"]["learned"] == b["views"]["learned"]
    assert a["single"]["history"]["Lambda"] == b["single"]["history"]["Lambda"]


def test_resume_skips_finished_stages(tmp_path):
    cfg = _cfg()
    first = Counting()
    full = run_protocol(cfg, out_dir=tmp_path, reporter=first)
    assert first.computed == ["single", "ensemble", "kd", "ensemble_of_kd"]
    # Simulate an interruption after "kd": drop the last stage's checkpoint.
    (tmp_path / "stages" / "ensemble_of_kd.pt").unlink()
    second = Counting()
    resumed = run_protocol(cfg, out_dir=tmp_path, resume=True, reporter=second)
    assert second.cached == ["single", "ensemble", "kd"]
    assert second.computed == ["ensemble_of_kd"]
    assert resumed["ensemble_of_kd"]["test_error"] == full["ensemble_of_kd"]["test_error"]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["complete"] is True


def test_resume_ignores_checkpoints_of_another_config(tmp_path):
    run_protocol(_cfg().with_overrides({"protocol.stages": "single"}), out_dir=tmp_path)
    other = _cfg().with_overrides({"protocol.stages": "single", "data.mu": 0.3})
    rep = Counting()
    run_protocol(other, out_dir=tmp_path, resume=True, reporter=rep)
    assert rep.computed == ["single"]


def test_stage_prerequisites_are_added():
    assert stages.resolve(stages.SYNTHETIC, ["ensemble_of_kd"]) == ["single", "kd", "ensemble_of_kd"]
    with pytest.raises(ValueError, match="unknown stage"):
        stages.resolve(stages.SYNTHETIC, ["nope"])


def test_single_stage_is_reused_across_protocol_settings(tmp_path):
    run_protocol(_cfg().with_overrides({"protocol.stages": "single,kd"}), out_dir=tmp_path)
    rep = Counting()
    other = _cfg().with_overrides({"protocol.stages": "single,kd", "protocol.kd_objective": "practical"})
    run_protocol(other, out_dir=tmp_path, resume=True, reporter=rep)
    assert rep.cached == ["single"] and rep.computed == ["kd"]


def test_ntk_baseline_trains_off_ln_k():
    """At the presets' small σ_0 the raw tangent features are ~1e-10: without standardization the
    NTK's loss stays at ln k. Standardized, its single models fit most of the training set."""
    import math

    cfg = get_preset("smoke").with_overrides({"protocol.stages": "ntk"})
    r = run_protocol(cfg)
    single = r["ntk"]["single"]
    assert max(single["final_loss"]) < 0.5 * math.log(cfg.data.k)
    assert min(single["train_accuracy"]) > 0.85


def test_fixed_feature_models_take_normalized_steps_of_baseline_delta():
    from multiview.fixed_features import baseline_train_config

    def tcfg(**sets):
        cfg = get_preset("smoke").with_overrides(sets)
        return baseline_train_config(cfg.train, cfg.protocol)

    assert get_preset("smoke").train.step == "relative"
    t = tcfg(**{"protocol.baseline_delta": 0.3})
    assert (t.step, t.delta) == ("normalized", 0.3)
    t = tcfg(**{"protocol.baseline_delta": 0.0, "train.delta": 0.02})
    assert (t.step, t.delta) == ("normalized", 0.02)
    t = tcfg(**{"train.step": "constant", "train.lr": 0.5})
    assert (t.step, t.lr) == ("constant", 0.5)


def test_a_script_reruns_one_stage_on_a_cached_single_stage(tmp_path):
    """What ``scripts/kd/screen.py`` does, through the public API: the rerun student is the same."""
    from multiview.protocol import load_stage, run_stage
    from multiview.run import Run
    from multiview.train import train

    cfg = _cfg().with_overrides({"protocol.stages": "single,kd"})
    full = run_protocol(cfg, out_dir=tmp_path)
    calls = []

    def trainer(*args, **kwargs):
        calls.append(kwargs["max_steps"])
        return train(*args, **kwargs)

    run = Run.create(cfg, trainer=trainer)
    assert run.test_inputs is run.test_inputs  # built once with the run, not at every access
    run.tensors["single"] = load_stage(tmp_path / "stages" / "single.pt", cfg, "single")
    part, tensors = run_stage(run, "kd")
    assert part["test_error"] == full["kd"]["test_error"]
    assert calls == [cfg.protocol.kd_steps] and tensors["weights"].shape[0] == cfg.n_seeds
    with pytest.raises(ValueError, match="written for another config"):
        load_stage(tmp_path / "stages" / "single.pt", cfg.with_overrides({"data.mu": 0.3}), "single")


def test_stage_hashes_follow_the_registry_keys():
    from multiview.protocol import stage_hash

    cfg = _cfg()
    kd = cfg.with_overrides({"protocol.kd_temperature": 2.0})
    assert stage_hash(kd, "single") == stage_hash(cfg, "single")
    assert stage_hash(kd, "kd") != stage_hash(cfg, "kd")
    assert stage_hash(cfg.with_overrides({"data.mu": 0.3}), "single") != stage_hash(cfg, "single")


def test_every_training_records_how_it_stopped_and_the_run_lists_what_did_not_converge():
    res = run_protocol(_cfg().with_overrides({"protocol.stages": "single,kd"}))
    p = res["config"]["protocol"]
    for stage, budget in (("single", res["config"]["train"]["max_steps"]), ("kd", p["kd_steps"])):
        part = res[stage]
        assert set(part["stopped_by"]) <= {"loss_threshold", "flow_time", "max_steps"}
        assert part["max_steps"] == budget and part["loss_threshold"] > 0  # the theory objective stops
        out_of_steps = [
            s for s, by in zip(part["steps"], part["stopped_by"], strict=True) if by == "max_steps"
        ]
        assert part["not_converged"] == len(out_of_steps) and all(s == budget for s in out_of_steps)
        assert part["converged"] == [by == "loss_threshold" for by in part["stopped_by"]]
    expected = {s: res[s]["not_converged"] for s in ("single", "kd") if res[s]["not_converged"]}
    assert res["unconverged"] == expected
