"""Property tests of the multi-view generator (hypothesis)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multiview.config import DataConfig
from multiview.data import DataError, MultiViewDistribution
from multiview.settings import ConfigError

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Explicit values for the fields whose defaults are tuned for the presets.
BASE = {"s": 1.0, "C_p": 1, "noise_model": "gaussian"}


def _dc(**kwargs) -> DataConfig:
    return DataConfig(**{**BASE, **kwargs})


@st.composite
def configs(draw):
    k = draw(st.integers(2, 8))
    C_p = draw(st.integers(1, 3))
    P = draw(st.integers(2 * C_p + C_p, 6 * C_p + 4))
    d = draw(st.integers(2 * k, 2 * k + 40))
    return _dc(
        k=k,
        d=d,
        P=P,
        C_p=C_p,
        s=draw(st.floats(0.0, min(3.0, k))),
        mu=draw(st.floats(0.0, 1.0)),
        rho=draw(st.floats(0.01, 0.5)),
        Gamma=draw(st.floats(0.05, 0.5)),
        gamma=draw(st.floats(0.0, 0.05)),
        sigma_p=draw(st.floats(0.0, 0.2)),
        split=draw(st.sampled_from(["dirichlet", "even"])),
        feature_noise=draw(st.sampled_from(["all", "sparse"])),
        noise_model=draw(st.sampled_from(["gaussian", "orthogonal"])),
        noise_in_feature_span=draw(st.booleans()),
        n_train=10,
        n_test=10,
    )


@FAST
@given(configs(), st.integers(0, 2**31 - 1))
def test_features_are_orthonormal(cfg, seed):
    V = MultiViewDistribution(cfg, seed).features
    assert torch.allclose(V @ V.T, torch.eye(2 * cfg.k, dtype=torch.float64), atol=1e-10)


@FAST
@given(configs(), st.integers(0, 2**31 - 1))
def test_batch_structure(cfg, seed):
    dist = MultiViewDistribution(cfg, seed)
    b = dist.sample(40, "train", dtype=torch.float64)
    n, k2 = 40, 2 * cfg.k
    present = b.totals > 0
    own = torch.arange(k2)[None, :] // 2 == b.y[:, None]
    # Both label views are always present.
    assert torch.all(present[own.nonzero(as_tuple=True)] | (b.totals[own] == 0) & (cfg.rho == 0))
    # Each present feature owns exactly C_p patches; absent features own none (patch sets are disjoint
    # by construction: one feature index per patch).
    counts = torch.zeros(n, k2, dtype=torch.long)
    pf = b.patch_feature
    counts.scatter_add_(1, pf.clamp(min=0), (pf >= 0).long())
    assert torch.all(counts[present] == cfg.C_p)
    assert torch.all(counts[~present] == 0)
    # z sums to the totals over each feature's patches.
    sums = torch.zeros(n, k2, dtype=torch.float64).scatter_add_(1, pf.clamp(min=0), b.z * (pf >= 0))
    assert torch.allclose(sums, b.totals, atol=1e-10)
    # α in [0, γ].
    assert b.alpha.min() >= 0 and b.alpha.max() <= cfg.gamma + 1e-12
    # Dominant views only for single-view examples.
    assert torch.all((b.dominant >= 0) == b.single)


def _in(x, lo, hi):
    return bool(torch.all((x >= lo - 1e-12) & (x <= hi + 1e-12)))


@FAST
@given(configs(), st.integers(0, 2**31 - 1))
def test_totals_inside_their_intervals(cfg, seed):
    b = MultiViewDistribution(cfg, seed).sample(60, "train", dtype=torch.float64)
    k2 = 2 * cfg.k
    view = torch.arange(k2) % 2
    own = torch.arange(k2)[None, :] // 2 == b.y[:, None]
    single = b.single[:, None]
    dom = own & (view[None, :] == b.dominant[:, None])
    weak = own & single & ~dom
    cross = (b.totals > 0) & ~own
    t = b.totals
    assert _in(t[own & ~single], *cfg.label_view_total)
    assert _in(t[dom], *cfg.dominant_view_total)
    assert _in(t[weak], cfg.rho * cfg.weak_view_total[0], cfg.rho * cfg.weak_view_total[1])
    assert _in(t[cross & ~single], *cfg.cross_total_multi)
    assert _in(
        t[cross & single], cfg.Gamma * cfg.cross_total_single[0], cfg.Gamma * cfg.cross_total_single[1]
    )


@FAST
@given(configs(), st.integers(0, 2**31 - 1))
def test_same_seed_same_data(cfg, seed):
    a = MultiViewDistribution(cfg, seed).sample(20, "train", dtype=torch.float64)
    b = MultiViewDistribution(cfg, seed).sample(20, "train", dtype=torch.float64)
    for name in ("y", "single", "dominant", "totals", "patch_feature", "z", "alpha", "noise_norm"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    if a.X is not None:
        assert torch.equal(a.X, b.X)
    c = MultiViewDistribution(cfg, seed).sample(20, "test", dtype=torch.float64)
    assert not torch.equal(a.totals, c.totals)


@pytest.mark.parametrize("mu", [0.05, 0.3, 0.8])
def test_single_view_fraction_matches_mu(mu):
    n = 20000
    b = MultiViewDistribution(_dc(k=4, d=16, P=12, s=1.0, mu=mu, noise_model="orthogonal"), 3).sample(n, "t")
    frac = b.single.double().mean().item()
    assert abs(frac - mu) < 4 * math.sqrt(mu * (1 - mu) / n)
    dom = b.dominant[b.single].double().mean().item()
    assert abs(dom - 0.5) < 4 * math.sqrt(0.25 / int(b.single.sum()))


def test_patches_are_built_from_their_parts():
    cfg = _dc(k=3, d=30, P=10, sigma_p=0.1, gamma=0.02)
    dist = MultiViewDistribution(cfg, 0)
    b = dist.sample(15, "train", dtype=torch.float64)
    assert torch.allclose(b.X, b.coef @ dist.features + b.noise, atol=1e-12)
    assert torch.allclose(b.noise_norm, b.noise.norm(dim=-1))


def test_noise_off_feature_span():
    cfg = _dc(k=3, d=30, P=10, sigma_p=0.1, noise_in_feature_span=False)
    dist = MultiViewDistribution(cfg, 0)
    b = dist.sample(15, "train", dtype=torch.float64)
    assert (b.noise @ dist.features.T).abs().max() < 1e-12


def test_orthogonal_model_has_no_dense_patches_and_exact_norms():
    cfg = _dc(k=3, d=100, P=10, sigma_p=0.05, gamma=0.01, noise_model="orthogonal")
    b = MultiViewDistribution(cfg, 0).sample(15, "train", dtype=torch.float64)
    assert b.X is None and b.noise is None
    feat = b.patch_feature >= 0
    assert torch.allclose(b.noise_norm[feat], torch.full_like(b.noise_norm[feat], 0.05 * 10))
    assert torch.allclose(
        b.noise_norm[~feat], torch.full_like(b.noise_norm[~feat], cfg.sigma_nonfeature_resolved * 10)
    )


def test_cap_drops_cross_features_and_reports_it():
    cfg = _dc(k=10, d=40, P=6, C_p=2, s=5.0, noise_model="orthogonal")
    b = MultiViewDistribution(cfg, 0).sample(200, "train")
    assert b.capped.any()
    assert int(b.cross_features.sum(1).max()) <= cfg.P // cfg.C_p - 2


def test_cap_error_mode_names_the_fields():
    cfg = _dc(k=10, d=40, P=6, C_p=2, s=5.0, on_cap="error")
    with pytest.raises(DataError, match="data.P"):
        MultiViewDistribution(cfg, 0).sample(200, "train")


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"d": 5}, "data.d"),
        ({"mu": 1.5}, "data.mu"),
        ({"P": 3, "C_p": 2}, "data.P"),
        ({"label_view_total": (2.0, 1.0)}, "data.label_view_total"),
        ({"split": "random"}, "data.split"),
        ({"noise_model": "pink"}, "data.noise_model"),
        ({"s": -1.0}, "data.s"),
    ],
)
def test_impossible_parameters_are_refused(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        MultiViewDistribution(_dc(**kwargs), 0)
