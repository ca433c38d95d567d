"""Property tests of the multi-view generator (hypothesis)."""

from __future__ import annotations

import math
from dataclasses import fields

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multiview.config import DataConfig
from multiview.data import Batch, DataError, MultiViewDistribution
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
    # Dominant views only for single-view examples (−1 marks a multi-view example), and −1 marks a
    # patch without a feature.
    assert torch.all((b.dominant >= 0) == b.single) and torch.all(b.dominant[~b.single] == -1)
    assert torch.all(b.patch_feature >= -1) and torch.all(b.patch_feature < k2)


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


# --- the draws themselves -----------------------------------------------------------------------


def fingerprint(t: torch.Tensor) -> float:
    """A position-weighted sum: changes when any value changes or values trade places."""
    t = t.double().flatten()
    return float((t * (1 + torch.arange(t.numel(), dtype=torch.float64) / t.numel())).sum())


PINNED = {
    "gaussian": (
        _dc(
            k=3,
            d=16,
            P=8,
            C_p=2,
            s=1.5,
            mu=0.5,
            gamma=0.05,
            sigma_p=0.1,
            feature_noise="sparse",
            noise_in_feature_span=False,
        ),
        {
            "y": [0, 2, 2, 0, 2, 0],
            "single": [True, False, True, True, True, True],
            "dominant": [0, -1, 1, 1, 1, 0],
            "capped": [True, False, True, True, False, False],
            "patch_feature": [
                [5, 5, 0, 4, 4, 1, 1, 0],
                [-1, 1, 5, 1, 4, 5, 4, -1],
                [5, 0, 4, 2, 0, 5, 2, 4],
                [5, 1, 5, 0, 2, 2, 1, 0],
                [4, 2, 1, 1, 2, 5, 4, 5],
                [1, 4, 4, 3, 1, 3, 0, 0],
            ],
        },
        {
            "features": -6.317283493256788,
            "totals": 17.77064263675491,
            "z": 17.83923487033175,
            "alpha": 3.918062945331978,
            "noise_norm": 20.968650997258724,
            "X": -11.713851855379552,
            "fresh": -0.6300852934756722,
        },
    ),
    "orthogonal": (
        _dc(
            k=2,
            d=50,
            P=9,
            C_p=3,
            s=1.0,
            mu=0.5,
            gamma=0.02,
            sigma_p=0.1,
            split="even",
            noise_model="orthogonal",
        ),
        {
            "y": [1, 1, 0, 0, 0, 1],
            "single": [True, False, True, True, True, True],
            "dominant": [0, -1, 1, 1, 1, 0],
            "capped": [False, True, True, False, False, False],
            "patch_feature": [
                [-1, 2, 2, 2, -1, 3, 3, 3, -1],
                [3, 0, 2, 2, 0, 3, 3, 0, 2],
                [1, 0, 0, 1, 2, 2, 0, 2, 1],
                [1, 1, 0, 0, 2, 2, 0, 1, 2],
                [2, 2, 0, 1, 1, 0, 1, 0, 2],
                [0, 2, 0, 2, 3, 2, 3, 3, 0],
            ],
        },
        {
            "features": -0.9400914268734035,
            "totals": 16.67413540934905,
            "z": 16.66272234662115,
            "alpha": 3.053255511152424,
            "noise_norm": 54.77252959058265,
            "fresh": -0.17022397803095102,
        },
    ),
}


@pytest.mark.parametrize("model", list(PINNED))
def test_the_draws_of_a_seed_are_pinned(model):
    """Seed 7's features, examples and fresh noise, as every published number was drawn: a change
    to the sampler (its streams, their order, their precision) shows here first. Integer draws are
    exact; real ones are position-weighted sums (rel. 1e-12, 1e-9 where a QR or a product enters)."""
    cfg, exact, sums = PINNED[model]
    dist = MultiViewDistribution(cfg, 7)
    b = dist.sample(6, "train", dtype=torch.float64)
    for name, value in exact.items():
        assert getattr(b, name).tolist() == value, name
    assert fingerprint(dist.features) == pytest.approx(sums["features"], rel=1e-9)
    for name in ("totals", "z", "alpha"):
        assert fingerprint(getattr(b, name)) == pytest.approx(sums[name], rel=1e-12), name
    assert fingerprint(b.noise_norm) == pytest.approx(sums["noise_norm"], rel=1e-9)
    if "X" in sums:
        assert fingerprint(b.X) == pytest.approx(sums["X"], rel=1e-9)
    D = dist.weight_dim(6)
    W = torch.linspace(-1, 1, 2 * cfg.k * D, dtype=torch.float64).view(2, cfg.k, 1, D)
    assert fingerprint(dist.fresh_noise_correlations(W, b, 0.01)) == pytest.approx(sums["fresh"], rel=1e-9)


def test_another_seed_draws_other_features_data_and_fresh_noise():
    cfg = PINNED["gaussian"][0]
    a, b = MultiViewDistribution(cfg, 7), MultiViewDistribution(cfg, 8)
    assert not torch.allclose(a.features, b.features)
    ba, bb = a.sample(6, "train", dtype=torch.float64), b.sample(6, "train", dtype=torch.float64)
    assert not torch.equal(ba.totals, bb.totals)
    W = torch.ones(1, cfg.k, 1, cfg.d, dtype=torch.float64)
    assert not torch.allclose(a.fresh_noise_correlations(W, ba, 0.0), b.fresh_noise_correlations(W, ba, 0.0))


def test_large_samples_are_drawn_in_chunks_of_the_right_sizes(monkeypatch):
    import multiview.data as data

    cfg = _dc(k=2, d=8, P=6, noise_model="gaussian")
    for chunk in (4, 5):  # three chunks (4 + 4 + 2), two (5 + 5)
        monkeypatch.setattr(data, "_CHUNK", chunk)
        b = MultiViewDistribution(cfg, 0).sample(10, "train", dtype=torch.float64)
        assert len(b) == 10 and b.X.shape[0] == 10 and b.totals.shape[0] == 10
        first = MultiViewDistribution(cfg, 0).sample(chunk, "train", dtype=torch.float64)
        assert torch.equal(b.X[:chunk], first.X) and torch.equal(b.y[:chunk], first.y)


def test_a_total_is_split_evenly_or_at_random_over_its_patches():
    for split in ("even", "dirichlet"):
        cfg = _dc(k=2, d=8, P=9, C_p=3, split=split, noise_model="orthogonal")
        b = MultiViewDistribution(cfg, 0).sample(20, "train", dtype=torch.float64)
        pf = b.patch_feature
        for i in range(20):
            for f in range(4):
                z = b.z[i][pf[i] == f]
                if len(z) == 0:
                    continue
                even = torch.allclose(z, torch.full_like(z, float(b.totals[i, f]) / 3), rtol=1e-14, atol=0)
                assert even is (split == "even"), (split, i, f)


def test_sparse_feature_noise_touches_a_fixed_number_of_features_per_patch():
    cfg = _dc(k=4, d=8, P=6, gamma=0.1, feature_noise="sparse", feature_noise_count=3)
    b = MultiViewDistribution(cfg, 0).sample(30, "train", dtype=torch.float64)
    assert torch.all((b.alpha > 0).sum(-1) == 3)
    assert (b.alpha > 0).any(0).any(0).all()  # every feature is touched somewhere


def test_a_sample_that_fills_the_patches_exactly_is_not_capped():
    # k = 3, P = 6 patches of one feature: 2 label views + every one of the 4 cross-class
    # features (s = k: each enters with probability 1) fit exactly.
    cfg = _dc(k=3, d=8, P=6, C_p=1, s=3.0, mu=0.0, on_cap="error")
    b = MultiViewDistribution(cfg, 0).sample(20, "train")
    assert not b.capped.any() and torch.all(b.cross_features.sum(1) == 4)
    drop = _dc(k=3, d=8, P=5, C_p=1, s=3.0, mu=0.0)
    capped = MultiViewDistribution(drop, 0).sample(20, "train")
    assert capped.capped.all() and torch.all(capped.cross_features.sum(1) == 3)


def test_the_cap_error_says_what_an_example_drew():
    cfg = _dc(k=3, d=8, P=5, C_p=1, s=3.0, on_cap="error")
    with pytest.raises(DataError) as err:
        MultiViewDistribution(cfg, 0).sample(20, "train")
    assert str(err.value) == (
        "data.P = 5 holds 5 features of C_p = 1 patches, but an example drew 4 cross-class features "
        "(+2 label views); raise data.P, lower data.s, or set data.on_cap = 'drop'"
    )


# --- what the learners see ----------------------------------------------------------------------


def test_training_and_test_inputs_under_the_orthogonal_model():
    cfg = _dc(k=2, d=8, P=4, noise_model="orthogonal")
    dist = MultiViewDistribution(cfg, 0)
    b = dist.sample(5, "train", dtype=torch.float64)
    seen = dist.inputs(b, seen=True)
    assert seen.index.tolist() == [0, 1, 2, 3, 4] and seen.n_train == 5 and seen.fresh_key == 0
    assert seen.dim == dist.weight_dim(5)
    fresh = dist.inputs(b, seen=False)
    assert fresh.index.tolist() == [-1] * 5 and fresh.n_train == 0 and fresh.fresh_key == 0
    assert dist.inputs(b, seen=False, fresh_key=3).fresh_key == 3
    assert torch.equal(seen.coef, b.coef) and torch.equal(seen.noise_norm, b.noise_norm)


@pytest.mark.parametrize("model", ["gaussian", "orthogonal"])
def test_own_noise_correlations_are_inner_products_with_each_patch_noise(model):
    cfg = _dc(k=2, d=12, P=4, sigma_p=0.3, gamma=0.1, noise_model=model)
    dist = MultiViewDistribution(cfg, 0)
    b = dist.sample(5, "train", dtype=torch.float64)
    R, k, m, D = 2, 2, 3, dist.weight_dim(5)
    W = torch.randn(R, k, m, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    if model == "gaussian":
        noise = b.noise  # (n, P, d)
    else:  # patch (i, p) owns the unit direction at column 2k + i·P + p
        noise = torch.zeros(5, 4, D, dtype=torch.float64)
        for i in range(5):
            for p in range(4):
                noise[i, p, 2 * k + i * 4 + p] = b.noise_norm[i, p]
    expected = torch.einsum("npd,rkmd->nprkm", noise, W)
    assert torch.allclose(dist.own_noise_correlations(W, b), expected, atol=1e-12)


def test_fresh_noise_is_new_noise_of_the_same_law():
    cfg = _dc(k=2, d=400, P=4, sigma_p=0.3, gamma=0.1, sigma_nonfeature=0.05, noise_in_feature_span=False)
    dist = MultiViewDistribution(cfg, 0)
    b = dist.sample(50, "train", dtype=torch.float64)
    # unit weights along the coordinate axes: the correlation is one coordinate of ξ′_p
    W = torch.eye(cfg.d, dtype=torch.float64)[:40].view(2, 2, 10, cfg.d)
    fresh = dist.fresh_noise_correlations(W, b, init_std=0.0)
    assert fresh.shape == (50, 4, 2, 2, 10)
    assert torch.equal(fresh, dist.fresh_noise_correlations(W, b, init_std=0.0))  # reproducible
    own = dist.own_noise_correlations(W, b)
    assert not torch.allclose(fresh, own)
    on_feature = b.patch_feature >= 0
    for mask, sigma in ((on_feature, 0.3), (~on_feature, 0.05)):
        assert float(fresh[mask].std()) == pytest.approx(sigma, rel=0.05)
    # off the features' span, as the training noise is
    V = dist.features.view(2, 2, 1, cfg.d)
    assert dist.fresh_noise_correlations(V, b, 0.0).abs().max() < 1e-12
    # float32 weights get float32 correlations of the same noise
    f32 = dist.fresh_noise_correlations(W.float(), b, 0.0)
    assert f32.dtype == torch.float32 and torch.allclose(f32.double(), fresh, atol=1e-6)


def test_fresh_noise_under_the_orthogonal_model_is_the_initial_coordinate():
    cfg = _dc(k=2, d=100, P=4, sigma_p=0.3, gamma=0.1, noise_model="orthogonal")
    dist = MultiViewDistribution(cfg, 0)
    b = dist.sample(200, "train", dtype=torch.float64)
    W = torch.zeros(2, 2, 3, dist.weight_dim(200), dtype=torch.float64)
    assert torch.equal(
        dist.fresh_noise_correlations(W, b, 0.0), torch.zeros(200, 4, 2, 2, 3, dtype=torch.float64)
    )
    g = dist.fresh_noise_correlations(W, b, 0.1) / b.noise_norm[..., None, None, None]
    assert float(g.mean()) == pytest.approx(0.0, abs=0.005) and float(g.std()) == pytest.approx(0.1, rel=0.03)
    b32 = dist.sample(200, "train")  # float32, as a float32 run holds it
    f32 = dist.fresh_noise_correlations(W.float(), b32, 0.1)
    assert f32.dtype == torch.float32 and torch.allclose(
        f32.double() / b.noise_norm[..., None, None, None], g
    )


def test_feature_coordinates_in_the_weights_dtype():
    cfg = _dc(k=2, d=12, P=4, noise_model="gaussian")
    dist = MultiViewDistribution(cfg, 0)
    W = dist.features[None].clone()  # (1, 2k, d): each row is a feature
    assert torch.allclose(dist.feature_coordinates(W)[0], torch.eye(4, dtype=torch.float64), atol=1e-12)
    f32 = dist.feature_coordinates(W.float())
    assert f32.dtype == torch.float32 and torch.allclose(
        f32[0].double(), torch.eye(4, dtype=torch.float64), atol=1e-6
    )


# --- the device of the data -----------------------------------------------------------------------


def _small(model: str):
    cfg = _dc(k=2, d=12, P=4, sigma_p=0.3, gamma=0.1, sigma_nonfeature=0.05, noise_model=model)
    dist = MultiViewDistribution(cfg, 0)
    batch = dist.sample(5, "train", dtype=torch.float64)
    W = torch.randn(
        2, 2, 3, dist.weight_dim(5), generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    return dist, batch, W


@pytest.mark.parametrize("model", ["gaussian", "orthogonal"])
def test_a_batch_is_drawn_and_moved_to_the_device_asked(model):
    dist, batch, _ = _small(model)
    moved = batch.to("meta", torch.float32)
    drawn = dist.sample(5, "train", device="meta", dtype=torch.float32)
    for f in fields(Batch):
        t = getattr(batch, f.name)
        for other in (getattr(moved, f.name), getattr(drawn, f.name)):
            if t is None:
                assert other is None
                continue
            assert other.device.type == "meta" and other.shape == t.shape, f.name
            assert other.dtype == (torch.float32 if t.is_floating_point() else t.dtype), f.name


@pytest.mark.parametrize("model", ["gaussian", "orthogonal"])
def test_what_the_learners_see_is_made_on_the_device_of_the_data(model, same_on_meta_default):
    """Under a meta default device the noise scales, inputs and correlations are those of the CPU:
    every tensor made for the data is made next to them."""
    dist, batch, W = _small(model)
    same_on_meta_default(lambda: dist.noise_std(batch.patch_feature))
    same_on_meta_default(lambda: (dist.inputs(batch, seen=True), dist.inputs(batch, seen=False, fresh_key=3)))
    same_on_meta_default(lambda: dist.feature_coordinates(W))
    same_on_meta_default(lambda: dist.own_noise_correlations(W, batch))
    same_on_meta_default(lambda: dist.fresh_noise_correlations(W, batch, 0.1))


@pytest.mark.parametrize("model", ["gaussian", "orthogonal"])
def test_correlations_are_on_the_device_of_the_weights(model, one_device):
    """The features and the fresh noise (drawn on the CPU) are moved to the weights' device."""
    dist, batch, W = _small(model)
    W = W.to("meta")
    # the Gaussian model reads the batch's patch features on the CPU to draw the noise: the batch
    # stays there; the orthogonal model multiplies by the batch's noise norms: the batch moves too
    if model == "orthogonal":
        batch = batch.to("meta", torch.float64)
    with one_device():
        coords = dist.feature_coordinates(W)
        fresh = dist.fresh_noise_correlations(W, batch, 0.1)
    assert coords.device.type == "meta" and coords.shape == (2, 2, 3, 4)
    assert fresh.device.type == "meta" and fresh.shape == (5, 4, 2, 2, 3)
