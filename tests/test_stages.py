"""The stage registry: both protocols' stages, what they need, what their checkpoints depend on."""

from __future__ import annotations

import dataclasses

import pytest

from multiview import stages
from multiview.cifar import protocol as cifar_protocol
from multiview.config import ProtocolConfig
from multiview.driver import stage_function
from multiview.protocol import STAGE_MODULES


def test_each_protocol_has_its_stages_in_run_order():
    assert stages.names(stages.SYNTHETIC) == (
        "single",
        "ensemble",
        "training_average",
        "kd",
        "kd_onehot",
        "self_kd",
        "ensemble_of_kd",
        "random_features",
        "ntk",
    )
    assert stages.names(stages.CIFAR)[-2:] == ("channel_split", "overlap")
    assert stages.names(stages.SYNTHETIC, stages.BASELINE) == ("random_features", "ntk")
    # The CIFAR protocol runs the paper's methods; the one-hot-teacher control is the simulator's.
    synthetic_methods = stages.names(stages.SYNTHETIC, stages.METHOD)
    paper_methods = tuple(m for m in synthetic_methods if m != "kd_onehot")
    assert stages.names(stages.CIFAR, stages.METHOD) == paper_methods


def test_prerequisites_are_added_in_run_order():
    assert stages.resolve(stages.SYNTHETIC, ["ensemble_of_kd"]) == ["single", "kd", "ensemble_of_kd"]
    assert stages.resolve(stages.CIFAR, ["overlap"]) == ["single", "ensemble", "overlap"]
    with pytest.raises(ValueError, match="unknown stage 'nope'; choose from single"):
        stages.resolve(stages.SYNTHETIC, ["nope"])


def test_every_stage_has_a_function_and_every_row_is_consistent():
    assert STAGE_MODULES and cifar_protocol.run_cifar
    fields = {f.name for f in dataclasses.fields(ProtocolConfig)}
    for protocol in (stages.SYNTHETIC, stages.CIFAR):
        rows = stages.of(protocol)
        assert len({s.label for s in rows}) == len(rows)
        for s in rows:
            assert callable(stage_function(protocol, s.name))
            assert all(dep in stages.names(protocol) for dep in s.requires)
            if protocol == stages.SYNTHETIC:
                assert set(s.keys) <= fields, s.name


def test_students_depend_on_every_kd_setting():
    for name in ("kd", "self_kd", "ensemble_of_kd", "kd_onehot"):
        assert set(stages.KD_KEYS) <= set(stages.get(stages.SYNTHETIC, name).keys)
    # The fixed-feature students take the baselines' steps: the CNN students' step settings
    # (rule, δ, flow-time horizon, logging) do not touch their checkpoints.
    for name in ("random_features", "ntk"):
        keys = set(stages.get(stages.SYNTHETIC, name).keys)
        assert set(stages.KD_OBJECTIVE_KEYS) <= keys
        assert not (set(stages.KD_KEYS) - set(stages.KD_OBJECTIVE_KEYS)) & keys
    assert stages.get(stages.SYNTHETIC, "single").keys == ()
