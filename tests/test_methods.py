"""The paper's methods as stages: what the distilled students are taught and what they record."""

from __future__ import annotations

import math

import pytest
import torch

from multiview import ensemble
from multiview.config import get_preset
from multiview.methods import losing_view_progress, one_hot_teacher
from multiview.protocol import run_stage
from multiview.run import Run
from multiview.train import train


def test_one_hot_teacher_keeps_the_label_logit_only():
    logits = torch.tensor([[[3.0, 1.0, 0.5], [0.2, 4.0, 2.0]]])
    y = torch.tensor([0, 1])
    out = one_hot_teacher(logits, y)
    assert torch.equal(out, torch.tensor([[[3.0, 0.0, 0.0], [0.0, 4.0, 0.0]]]))


def test_losing_view_progress_on_hand_made_lambda():
    # Λ(0) per (student, class): the loser is the view with the smaller Λ(0).
    L0 = torch.tensor([[[0.002, 0.001], [0.001, 0.004], [-0.001, 0.003]]])  # (1, 3, 2)
    # Λ(t) of the losers: doubled, unchanged, (a dead view: whatever happens).
    Lt = torch.tensor([[[0.002, 0.002], [0.002, 0.004], [0.5, 0.003]]])[None]  # (T=1, 1, 3, 2)
    loser, progress = losing_view_progress(Lt, L0, q=4)
    assert loser.tolist() == [[1, 0, 0]]
    assert progress[0, 0, 0].item() == pytest.approx(1 - 0.5**2)  # 1 − (Λ(0)/Λ(t))^(q−2)
    assert progress[0, 0, 1].item() == pytest.approx(1 - 0.5**2)
    assert math.isnan(progress[0, 0, 2].item())  # no neuron started positively correlated
    shrunk = losing_view_progress(torch.full_like(Lt, 1e-6), L0, q=4)[1]
    assert shrunk[0, 0, 0].item() == -1.0  # clipped where the view shrank


def _smoke_run(**protocol):
    cfg = get_preset("smoke").with_overrides({f"protocol.{k}": v for k, v in protocol.items()})
    run = Run.create(cfg)
    run.tensors["single"] = run_stage(run, "single")[1]
    return run


def _capture_teacher(run):
    """A trainer that records each objective's teacher logits (and takes one step)."""
    seen = []

    def trainer(learner, X, objective, n_runs, tcfg, **kwargs):
        seen.append(objective.teacher.clone())
        kwargs["max_steps"] = 1
        return train(learner, X, objective, n_runs, tcfg, **kwargs)

    run.trainer = trainer
    return seen


def test_every_student_stage_scales_its_teacher():
    run = _smoke_run(kd_teacher_scale=3.0, kd_objective="practical")
    seen = _capture_teacher(run)
    single = run.tensors["single"]
    run_stage(run, "self_kd")
    assert torch.allclose(seen[-1], 3.0 * single["train_logits"])
    run_stage(run, "kd")
    ens = ensemble.combine(single["train_logits"], "logits")[None]
    assert torch.allclose(seen[-1], 3.0 * ens)
    run_stage(run, "kd_onehot")
    assert torch.allclose(seen[-1], 3.0 * one_hot_teacher(ens, run.train.y))


def test_the_one_hot_control_trains_the_kd_students():
    run = _smoke_run(kd_steps=40, kd_objective="practical", kd_teacher_scale=1.0)
    kd_part, kd = run_stage(run, "kd")
    control_part, control = run_stage(run, "kd_onehot")
    assert not torch.equal(kd["weights"], control["weights"])  # another teacher, other students
    assert kd_part["history"]["losing_view"]["view"] == control_part["history"]["losing_view"]["view"]


def test_students_record_their_history_and_flow_time_horizon():
    run = _smoke_run(
        kd_steps=200,
        kd_log_every=20,
        kd_eval_examples=300,
        kd_flow_time=1e3,
        kd_step="normalized",
        kd_delta=0.2,
    )
    part, _ = run_stage(run, "kd")
    h = part["history"]
    S, k = run.cfg.n_seeds, run.cfg.data.k
    T = len(h["step"])
    assert T >= 2
    assert torch.tensor(h["Lambda"]).shape == (T, S, k, 2)
    assert torch.tensor(h["test_error"]).shape == (T, S, 3)
    assert torch.tensor(h["losing_view"]["progress"]).shape == (T, S, k)
    assert torch.tensor(h["both_fraction"]).shape == (T, S)
    assert all(reason in ("flow_time", "max_steps") for reason in part["stopped_by"])
    assert max(part["flow_time"]) <= 1e3 * (1 + 1e-6)
    assert part["teacher_scale"] == 1.0
