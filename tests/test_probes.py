"""Probes on hand-built weights: Φ, Λ, learned views, lottery, overlap, memorization."""

from __future__ import annotations

import torch

from multiview.config import DataConfig
from multiview.data import MultiViewDistribution
from multiview.probes import (
    exactly_one,
    lam,
    learned_views,
    lottery,
    lottery_agreement,
    memorization,
    phi,
    shared_views,
    view_correlations,
)

# Explicit values for the fields whose defaults are tuned for the presets.
BASE = {"s": 1.0, "C_p": 1, "noise_model": "gaussian"}


def _dc(**kwargs) -> DataConfig:
    return DataConfig(**{**BASE, **kwargs})


def _weights_with_correlations(dist, corr):
    """Weights (R, k, m, D) whose ⟨w_{i,r}, v_{i,ℓ}⟩ are ``corr`` (R, k, m, 2), orthogonal to the rest."""
    R, k, m, _ = corr.shape
    D = dist.weight_dim(5)
    W = torch.zeros(R, k, m, D, dtype=torch.float64)
    V = dist.features if not dist.orthogonal else torch.eye(D, dtype=torch.float64)[: 2 * k]
    for i in range(k):
        for ell in range(2):
            W[:, i] += corr[:, i, :, ell, None] * V[2 * i + ell]
    return W


def test_phi_lambda_and_learned_views_under_both_noise_models():
    corr = torch.tensor([[[[0.5, -0.2], [0.1, 0.05]], [[-0.1, -0.3], [0.0, 0.02]]]], dtype=torch.float64)
    for model in ("gaussian", "orthogonal"):
        dist = MultiViewDistribution(_dc(k=2, d=12, P=6, noise_model=model), 0)
        c = view_correlations(_weights_with_correlations(dist, corr), dist)
        assert torch.allclose(c, corr, atol=1e-12)
        assert torch.allclose(phi(c), torch.tensor([[[0.6, 0.05], [0.0, 0.02]]], dtype=torch.float64))
        assert torch.allclose(lam(c), torch.tensor([[[0.5, 0.05], [0.0, 0.02]]], dtype=torch.float64))
    learned = learned_views(lam(corr), varrho=0.1, threshold=1.0)
    assert learned.tolist() == [[[True, False], [False, False]]]
    assert exactly_one(learned).tolist() == [[True, False]]


def test_lottery_and_agreement():
    L0 = torch.tensor([[[0.010, 0.005], [0.004, 0.0041]]])
    winner, in_M = lottery(L0, margin=0.1)
    assert winner.tolist() == [[0, 1]]
    assert in_M.tolist() == [[[True, False], [False, False]]]
    learned = torch.tensor([[[True, False], [True, False]]])
    out = lottery_agreement(learned, winner, in_M)
    assert out["agreement"] == 0.5 and out["n_pairs"] == 2
    assert out["agreement_in_M"] == 1.0 and out["n_pairs_in_M"] == 1


def test_shared_views():
    learned = torch.tensor(
        [[[True, False], [False, True]], [[True, False], [True, False]], [[False, True], [True, False]]]
    )
    o = shared_views(learned)
    assert o["same_views"][0, 1] == 0.5 and o["same_views"][1, 2] == 0.5 and o["same_views"][0, 2] == 0.0
    assert torch.allclose(o["jaccard"][0, 1], torch.tensor(1 / 3))
    assert torch.all(o["same_views"].diagonal() == 1)


def test_memorization_sees_own_noise_not_fresh_noise():
    cfg = _dc(k=2, d=50, P=6, C_p=1, s=0.0, mu=1.0, sigma_p=0.1, noise_model="orthogonal")
    dist = MultiViewDistribution(cfg, 0)
    batch = dist.sample(8, "train", dtype=torch.float64)
    D = dist.weight_dim(8)
    W = torch.zeros(1, 2, 1, D, dtype=torch.float64)
    # Neuron of class y(0) memorizes example 0's first patch noise.
    col = 4 + 0 * cfg.P + 0
    W[0, batch.y[0], 0, col] = 3.0
    learned = torch.zeros(1, 2, 2, dtype=torch.bool)
    mem = memorization(W, batch, dist, learned, init_std=0.0)
    unl = mem["single_dominant_unlearned"]
    assert unl["count"] == [8]
    assert abs(unl["own_noise"][0] - 3.0 * batch.noise_norm[0, 0].item() / 8) < 1e-9
    assert unl["fresh_noise"][0] == 0.0
