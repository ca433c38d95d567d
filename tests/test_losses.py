"""Losses against golden values from an independent NumPy implementation (tests/golden/make_golden.py)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from multiview.losses import (
    TheoryKDObjective,
    cross_entropy,
    margin_correct,
    practical_kd_loss,
    theory_kd_coefficient,
)

G = json.loads((Path(__file__).parent / "golden" / "losses.json").read_text())
S = torch.tensor(G["student"], dtype=torch.float64)
T = torch.tensor(G["teacher"], dtype=torch.float64)
Y = torch.tensor(G["y"])


def test_cross_entropy_golden():
    assert torch.allclose(
        cross_entropy(S, Y), torch.tensor(G["cross_entropy"], dtype=torch.float64), rtol=1e-12
    )


def test_practical_kd_golden():
    got = practical_kd_loss(S, T, Y, G["t"], G["temperature"])
    assert torch.allclose(got, torch.tensor(G["practical_kd"], dtype=torch.float64), rtol=1e-12)


def test_theory_kd_coefficient_golden():
    got = theory_kd_coefficient(S, T, G["tau"])
    assert torch.allclose(got, torch.tensor(G["theory_kd_coefficient"], dtype=torch.float64), atol=1e-14)
    assert torch.all(got <= 0)


def test_practical_kd_with_t_one_is_cross_entropy():
    assert torch.allclose(practical_kd_loss(S, T, Y, 1.0, 3.0), cross_entropy(S, Y))


def test_theory_kd_surrogate_gradient_is_the_one_sided_term():
    """d(surrogate)/dF = dCE/dF + (η′/η)·(logit^τ(F) − logit^τ(G))^−."""
    obj = TheoryKDObjective(Y, T, G["tau"], eta_ratio=5.0)
    leaf = S.clone().requires_grad_(True)
    surrogate, report = obj(leaf, torch.arange(3))
    (g,) = torch.autograd.grad(surrogate.sum(), leaf)
    ce_leaf = S.clone().requires_grad_(True)
    (g_ce,) = torch.autograd.grad(cross_entropy(ce_leaf, Y).sum(), ce_leaf)
    expected = g_ce + 5.0 * theory_kd_coefficient(S, T, G["tau"])
    assert torch.allclose(g, expected, atol=1e-12)
    gap = -theory_kd_coefficient(S, T, G["tau"]).sum(dim=(-1, -2))
    assert torch.allclose(report, cross_entropy(S, Y) + gap)


def test_margin_correct_counts_ties_as_errors():
    logits = torch.tensor([[[1.0, 1.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 3.0]]])
    y = torch.tensor([0, 0, 2])
    assert margin_correct(logits, y).tolist() == [[False, True, True]]


def test_losses_sum_over_examples_and_keep_every_leading_axis():
    """(..., n, k) → (...): no leading axis, and two of them, give the per-set sums."""
    for loss in (
        lambda s: cross_entropy(s, Y),
        lambda s: practical_kd_loss(s, T[0], Y, G["t"], G["temperature"]),
    ):
        per_set = loss(S)  # (R,)
        assert loss(S[0]).shape == () and torch.allclose(loss(S[0]), per_set[0], rtol=1e-12)
        stacked = torch.stack([S, S.flip(0)])  # (2, R, n, k)
        assert torch.allclose(loss(stacked), torch.stack([per_set, per_set.flip(0)]), rtol=1e-12)
