"""Probes on hand-built weights: Φ, Λ, learned views, lottery, overlap, memorization."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from multiview.config import DataConfig, SimConfig
from multiview.data import MultiViewDistribution
from multiview.probes import (
    exactly_one,
    lam,
    learned_views,
    lottery,
    lottery_agreement,
    mean_offdiagonal,
    memorization,
    phi,
    shared_views,
    view_correlations,
    view_probe,
)

# Explicit values for the fields whose defaults are tuned for the presets.
BASE = {"s": 1.0, "C_p": 1, "noise_model": "gaussian"}


def _dc(**kwargs) -> DataConfig:
    return DataConfig(**{**BASE, **kwargs})


def below(x: float) -> float:
    return float(np.nextafter(x, -math.inf))


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


# --- the lottery-winning set M at its margin ----------------------------------------------------


def test_the_paper_margin_is_one_over_log_squared_m():
    probes = SimConfig().probes
    assert probes.margin(50) == 1 / math.log(50) ** 2
    assert probes.margin(2) == 0.0  # 1/log²2 > 2 would leave M empty
    assert replace(probes, lottery_margin=0.25).margin(50) == 0.25


@pytest.mark.parametrize("m", [3, 20, 50])
def test_lottery_set_M_on_both_sides_of_the_margin(m):
    margin = SimConfig().probes.margin(m)
    other = torch.tensor(0.004, dtype=torch.float64)
    edge = float((1 + margin) * other)  # Λ_{i,ℓ}(0) = (1 + 1/log²m)·Λ_{i,3−ℓ}(0): a member of M
    L0 = torch.tensor(
        [[[edge, 0.004], [0.004, below(edge)], [0.004, 0.004], [2 * edge, 0.004]]], dtype=torch.float64
    )
    winner, in_M = lottery(L0, margin)
    assert winner.tolist() == [[0, 1, 0, 0]]
    assert in_M.tolist() == [[[True, False], [False, False], [False, False], [True, False]]]


def test_a_member_of_M_needs_a_positive_correlation():
    L0 = torch.tensor([[[0.0, 0.0], [0.0, -0.01], [0.01, -0.01]]], dtype=torch.float64)
    _, in_M = lottery(L0, 0.1)
    assert in_M.tolist() == [[[False, False], [False, False], [True, False]]]


def test_learned_views_at_the_threshold():
    thr, varrho = 0.5, 0.5  # threshold·ϱ = 0.25 exactly
    Lambda = torch.tensor([[[0.25, below(0.25)]]], dtype=torch.float64)
    assert learned_views(Lambda, varrho, thr).tolist() == [[[True, False]]]


def test_lottery_agreement_counts_pairs_in_and_out_of_M():
    # (seed, class) pairs: learned view, predicted winner, in M
    learned = torch.tensor(
        [
            [[False, True], [True, False], [False, True], [True, True]],  # the last has two views
            [[True, False], [False, True], [False, False], [False, True]],  # the third has none
        ]
    )
    winner = torch.tensor([[1, 1, 0, 0], [0, 1, 0, 0]])
    in_M = torch.tensor(
        [
            [[False, True], [True, False], [False, False], [True, False]],
            [[False, False], [False, True], [False, False], [True, False]],
        ]
    )
    out = lottery_agreement(learned, winner, in_M)
    # exactly one view: (0,0) agrees, (0,1) not, (0,2) not, (1,0) agrees, (1,1) agrees, (1,3) not
    assert out["n_pairs"] == 6 and out["agreement"] == 0.5
    # of those, in M: (0,0) agrees, (0,1) not, (1,1) agrees, (1,3) not
    assert out["n_pairs_in_M"] == 4 and out["agreement_in_M"] == 0.5
    assert lottery_agreement(learned[:1, :1], winner[:1, :1]) == {"agreement": 1.0, "n_pairs": 1}
    none = lottery_agreement(torch.zeros(1, 2, 2, dtype=torch.bool), winner[:1, :2], in_M[:1, :2])
    assert none == {"agreement": 0.0, "n_pairs": 0, "agreement_in_M": 0.0, "n_pairs_in_M": 0}


# --- views shared between seeds ---------------------------------------------------------------


def test_jaccard_of_single_views_and_of_nothing():
    one = torch.tensor([[[True, False]], [[True, False]], [[False, False]]])
    o = shared_views(one)
    assert o["jaccard"].tolist() == [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]


def test_mean_offdiagonal_averages_the_pairs_of_seeds():
    M = torch.tensor([[1.0, 0.2, 0.4], [0.2, 1.0, 0.9], [0.4, 0.9, 1.0]])
    assert mean_offdiagonal(M) == pytest.approx(0.5)
    assert mean_offdiagonal(M[:2, :2]) == pytest.approx(0.2)
    assert math.isnan(mean_offdiagonal(M[:1, :1]))


def test_view_probe_reports_lambda_and_phi():
    corr = torch.tensor([[[[0.5, -0.2], [0.1, 0.05]], [[-0.1, -0.3], [0.0, 0.02]]]], dtype=torch.float64)
    dist = MultiViewDistribution(_dc(k=2, d=12, P=6), 0)
    out = view_probe(dist)(_weights_with_correlations(dist, corr))
    assert set(out) == {"Lambda", "Phi"}
    assert torch.allclose(out["Lambda"], lam(corr)) and torch.allclose(out["Phi"], phi(corr))


# --- memorization by group --------------------------------------------------------------------


def test_memorization_groups_examples_by_view_type_and_what_the_seed_learned():
    cfg = _dc(k=2, d=50, P=6, C_p=1, s=0.0, mu=0.5, sigma_p=0.1, noise_model="orthogonal")
    dist = MultiViewDistribution(cfg, 0)
    batch = dist.sample(12, "train", dtype=torch.float64)
    assert batch.single.tolist()[:2] == [False, True] and 0 in batch.dominant and 1 in batch.dominant
    P, D = cfg.P, dist.weight_dim(12)
    # Two seeds; seed r's neuron of class y(n) has correlation (r + 1)·(n + 1) with the noise of
    # example n's noisiest patch (and 0 with every other): own-noise means are known per group.
    W = torch.zeros(2, 2, 1, D, dtype=torch.float64)
    for i in range(12):
        p = int(batch.noise_norm[i].argmax())
        for r in range(2):
            W[r, batch.y[i], 0, 4 + i * P + p] = (r + 1) * (i + 1) / batch.noise_norm[i, p]
    by_view = torch.tensor([[[True, False], [True, False]], [[False, True], [False, True]]])
    all_or_none = torch.tensor([[[True, True], [True, True]], [[False, False], [False, False]]])
    # all 12 examples, seed 0 learned view 0 of both classes and seed 1 view 1; the first two
    # examples (one multi-view, one single-view), seed 0 learned everything and seed 1 nothing
    for n, learned in ((12, by_view), (2, all_or_none)):
        mem = memorization(W, batch.subset(slice(0, n)), dist, learned, init_std=0.0)
        assert list(mem) == ["multi_view", "single_dominant_learned", "single_dominant_unlearned"]
        for name, members in _memorization_groups(batch, learned, n).items():
            own = [
                sum((r + 1) * (i + 1) for i in ids) / len(ids) if ids else math.nan
                for r, ids in enumerate(members)
            ]
            assert mem[name]["count"] == [len(ids) for ids in members], name
            assert mem[name]["own_noise"] == pytest.approx(own, nan_ok=True), name
            fresh = [0.0 if ids else math.nan for ids in members]
            assert mem[name]["fresh_noise"] == pytest.approx(fresh, nan_ok=True), name


def _memorization_groups(batch, learned, n: int) -> dict[str, list[list[int]]]:
    """Per group and seed: the examples among the first n that belong to it."""
    groups: dict[str, list[list[int]]] = {
        g: [[] for _ in learned]
        for g in ("multi_view", "single_dominant_learned", "single_dominant_unlearned")
    }
    for r in range(len(learned)):
        for i in range(n):
            if not batch.single[i]:
                groups["multi_view"][r].append(i)
            elif learned[r, batch.y[i], batch.dominant[i]]:
                groups["single_dominant_learned"][r].append(i)
            else:
                groups["single_dominant_unlearned"][r].append(i)
    return groups


@pytest.mark.parametrize("model", ["gaussian", "orthogonal"])
def test_view_correlations_are_taken_on_the_device_of_the_weights(model, same_on_meta_default):
    """The class index is made next to the weights: under a meta default device the correlations
    are those of the CPU."""
    corr = torch.tensor([[[[0.5, -0.2], [0.1, 0.05]], [[-0.1, -0.3], [0.0, 0.02]]]], dtype=torch.float64)
    dist = MultiViewDistribution(_dc(k=2, d=12, P=6, noise_model=model), 0)
    W = _weights_with_correlations(dist, corr)
    c = same_on_meta_default(lambda: view_correlations(W, dist))
    assert torch.allclose(c, corr, atol=1e-12)
