"""Configs: validation messages name the field; TOML and --set round trips; presets are valid."""

from __future__ import annotations

import pytest

from multiview.config import SimConfig, get_preset, preset_names
from multiview.settings import ConfigError, parse_assignment


@pytest.mark.parametrize("name", preset_names())
def test_presets_validate(name):
    get_preset(name).validate()


def test_toml_round_trip(tmp_path):
    cfg = get_preset("smoke").with_overrides({"data.mu": 0.3, "protocol.stages": "single,kd"})
    path = tmp_path / "c.toml"
    path.write_text(cfg.to_toml())
    back = SimConfig.load_toml(path)
    assert back.to_dict() == cfg.to_dict()
    assert back.config_hash() == cfg.config_hash()


def test_toml_preset_key(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('preset = "smoke"\n[data]\nmu = 0.4\n')
    cfg = SimConfig.load_toml(path)
    assert cfg.data.mu == 0.4 and cfg.data.k == get_preset("smoke").data.k


@pytest.mark.parametrize(
    "text,key,value",
    [
        ("data.mu=0.2", "data.mu", 0.2),
        ("n_seeds = 4", "n_seeds", 4),
        ("split=even", "split", "even"),
        ("data.label_view_total=[1.0, 3.0]", "data.label_view_total", [1.0, 3.0]),
    ],
)
def test_parse_assignment(text, key, value):
    assert parse_assignment(text) == (key, value)


def test_bare_key_resolves_when_unique():
    assert SimConfig().with_overrides({"mu": 0.25}).data.mu == 0.25


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"data.mu": 2.0}, r"data.mu = 2.0: must be in \[0.0, 1.0\]"),
        ({"model.q": 0}, "model.q = 0: must be at least 1"),
        ({"model.sigma_0": 0.0}, "model.sigma_0"),
        ({"train.step": "fast"}, "train.step = 'fast': must be one of constant, normalized, relative"),
        ({"data.k": "ten"}, "data.k = 'ten': expected an integer"),
        ({"data.cross_total_multi": [0.4, 0.2]}, "out of order"),
        ({"protocol.stages": "single,bogus"}, "protocol.stages = 'bogus'"),
        ({"data.nope": 1}, "unknown config key 'data.nope'"),
        ({"nope": 1}, "unknown config key 'nope'"),
        ({"data.k": 10, "data.d": 10}, r"data.d = 10: must be at least 20 \(2·k"),
        ({"train.optimizer": "sgd"}, "train.batch_size = 0"),
        ({"data.noise_in_feature_span": "maybe"}, "true or false"),
    ],
)
def test_bad_values_name_the_field(overrides, message):
    with pytest.raises(ConfigError, match=message):
        SimConfig().with_overrides(overrides)


def test_unknown_section_in_toml(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[modle]\nm = 3\n")
    with pytest.raises(ConfigError, match="modle"):
        SimConfig.load_toml(path)


def test_hash_changes_with_any_field():
    a = SimConfig()
    assert a.config_hash() == SimConfig().config_hash()
    assert a.config_hash() != a.with_overrides({"seed": 1}).config_hash()
    assert a.config_hash() != SimConfig.from_dict({"train": {"delta": a.train.delta * 2}}).config_hash()
