"""Ensembles: combining members, subsets of every size, coverage, error against ensemble size."""

from __future__ import annotations

import math

import pytest
import torch

from multiview.config import DataConfig
from multiview.data import MultiViewDistribution
from multiview.ensemble import combine, coverage, ensemble_curve, member_subsets
from multiview.evaluate import error_rates


def test_combine_means_logits_or_probabilities():
    logits = torch.randn(3, 5, 4, dtype=torch.float64)
    assert torch.allclose(combine(logits), logits.mean(0))
    probs = torch.softmax(logits, -1).mean(0)
    assert torch.allclose(torch.softmax(combine(logits, "probs"), -1), probs)
    assert torch.allclose(combine(logits, "probs").exp(), probs)


def test_member_subsets_all_of_them_or_a_reproducible_sample():
    assert member_subsets(4, 2, 100) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    sample = member_subsets(10, 5, 20)
    assert len(sample) == len(set(sample)) == 20 and all(len(s) == 5 for s in sample)
    assert sample == member_subsets(10, 5, 20)
    assert sample != member_subsets(10, 5, 20, seed=1)
    assert len(member_subsets(10, 5, 1000)) == math.comb(10, 5)


def test_coverage_needs_both_views_of_a_class_in_some_member():
    learned = torch.tensor([[[True, False], [True, False]], [[False, True], [True, False]]])
    assert coverage(learned).tolist() == [True, False]
    assert coverage(learned[:1]).tolist() == [False, False]


def test_ensemble_curve_ends_at_the_full_ensemble():
    cfg = DataConfig(k=3, d=12, P=8, s=1.0, n_train=10, n_test=200)
    batch = MultiViewDistribution(cfg, 0).sample(200, "test")
    S = 4
    logits = torch.randn(S, 200, 3, generator=torch.Generator().manual_seed(0))
    learned = torch.rand(S, 3, 2, generator=torch.Generator().manual_seed(1)) > 0.5
    curve = ensemble_curve(logits, learned, batch)
    assert curve["K"] == [1, 2, 3, 4]
    assert curve["predicted_single_view"] == [0.5, 0.25, 0.125, 0.0625]
    full = error_rates(combine(logits)[None], batch)
    assert curve["all"][-1] == pytest.approx(float(full["all"][0]))
    assert curve["covered"][-1] == pytest.approx(float(coverage(learned).float().mean()))
    singles = error_rates(logits, batch)["all"]
    assert curve["all"][0] == pytest.approx(float(singles.mean()))


def test_the_sample_of_subsets_is_pinned():
    """The sampled subsets enter the reported ensemble curves: the same ones on every machine."""
    assert member_subsets(10, 5, 3) == [(0, 3, 4, 5, 7), (1, 3, 4, 6, 9), (2, 4, 6, 7, 8)]
    assert member_subsets(10, 5, 3, seed=1) == [(0, 1, 2, 5, 8), (1, 2, 3, 4, 5), (2, 3, 5, 7, 9)]


def test_ensemble_curve_combines_as_asked_over_twenty_subsets_by_default():
    cfg = DataConfig(k=3, d=12, P=8, s=1.0, n_train=10, n_test=200)
    batch = MultiViewDistribution(cfg, 0).sample(200, "test")
    S = 7  # 21 pairs of members: one more than the default sample of 20
    logits = 3 * torch.randn(S, 200, 3, generator=torch.Generator().manual_seed(0))
    learned = torch.rand(S, 3, 2, generator=torch.Generator().manual_seed(1)) > 0.5
    for how in ("logits", "probs"):
        curve = ensemble_curve(logits, learned, batch, how=how)
        pairs = member_subsets(S, 2, 20)
        errs = error_rates(torch.stack([combine(logits[list(p)], how) for p in pairs]), batch)
        assert curve["all"][1] == pytest.approx(float(errs["all"].mean()))
        assert curve["single_view"][1] == pytest.approx(float(errs["single_view"].mean()))
        cov = torch.stack([coverage(learned[list(p)]) for p in pairs]).float().mean()
        assert curve["covered"][1] == pytest.approx(float(cov))
    assert ensemble_curve(logits, learned, batch, how="probs") != ensemble_curve(logits, learned, batch)
