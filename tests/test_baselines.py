"""The NTK baseline: the linearized CNN is the CNN's first-order expansion, its gradient is the
autograd one, and its tangent features are standardized to unit RMS."""

from __future__ import annotations

import pytest
import torch

from multiview.baselines import LinearizedCNN, RandomFeatures, random_feature_map, tangent_scale
from multiview.evaluate import batched_logits
from multiview.inputs import DenseInputs, OrthogonalInputs
from multiview.model import TwoLayerCNN, init_weights, smoothed_relu

Q, VARRHO, SIGMA = 4, 0.1, 0.01


def _setup(R: int = 3, k: int = 3, m: int = 2, n: int = 7, P: int = 5, d: int = 11):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(n, P, d, generator=gen, dtype=torch.float64)
    w0 = init_weights(0, "ntk-test", list(range(R)), k, m, d, SIGMA, dtype=torch.float64)
    return DenseInputs(X), w0


def _tangent_norms_sq(inputs: DenseInputs, w0: torch.Tensor) -> torch.Tensor:
    """(R,) mean over examples and units of ‖Σ_p ReLU~′(⟨w⁰_u, x_p⟩)·x_p‖², formed explicitly."""
    R, k, m, d = w0.shape
    pre = torch.einsum("rkmd,npd->rkmnp", w0, inputs.X)
    slope = (pre.clamp(0, VARRHO) / VARRHO) ** (Q - 1)
    t = torch.einsum("rkmnp,npd->rkmnd", slope, inputs.X)
    return t.pow(2).sum(-1).mean((1, 2, 3))


def test_tangent_scale_gives_unit_rms_tangent_features():
    inputs, w0 = _setup()
    R = w0.shape[0]
    scale = tangent_scale(inputs, w0, Q, VARRHO, 0.0, 0, probe_seeds=list(range(R)), probes=2000)
    exact = _tangent_norms_sq(inputs, w0)
    # the estimate is a Monte-Carlo mean over Gaussian probes: a few percent at 2000 probes
    assert torch.allclose(scale**-2, exact, rtol=0.08)
    # a replica's scale does not depend on the other replicas in the batch
    alone = tangent_scale(inputs, w0[1:2], Q, VARRHO, 0.0, 0, probe_seeds=[1], probes=2000)
    assert torch.allclose(alone, scale[1:2], rtol=1e-12)


def test_tangent_scale_defaults_to_four_probes_per_unit():
    inputs, w0 = _setup()
    seeds = [0, 1, 2]
    default = tangent_scale(inputs, w0, Q, VARRHO, 0.0, 0, probe_seeds=seeds)
    assert torch.equal(default, tangent_scale(inputs, w0, Q, VARRHO, 0.0, 0, probe_seeds=seeds, probes=4))
    assert not torch.equal(default, tangent_scale(inputs, w0, Q, VARRHO, 0.0, 0, probe_seeds=seeds, probes=5))


def test_a_given_scale_takes_the_weights_dtype():
    inputs, w0 = _setup()
    w32 = w0.float()
    ntk = LinearizedCNN(w32, Q, VARRHO, 0.0, 0, torch.tensor([3.0, 0.5, 7.0], dtype=torch.float64))
    assert ntk.scale.dtype == torch.float32 and ntk.scale.tolist() == [3.0, 0.5, 7.0]
    for w in (w0, w32):  # no scale given: ones of the weights' dtype
        ones = LinearizedCNN(w, Q, VARRHO, 0.0, 0).scale
        assert ones.dtype == w.dtype and ones.tolist() == [1.0, 1.0, 1.0]


def test_linearized_forward_is_first_order_expansion():
    inputs, w0 = _setup()
    scale = torch.tensor([3.0, 0.5, 7.0], dtype=torch.float64)
    ntk = LinearizedCNN(w0, Q, VARRHO, 0.0, 0, scale)
    gen = torch.Generator().manual_seed(1)
    direction = torch.randn(w0.shape, generator=gen, dtype=torch.float64)
    base, _ = TwoLayerCNN(w0, Q, VARRHO).forward(inputs)
    remainders = []
    for eps in (1e-5, 1e-6):
        ntk.delta = eps * direction
        lin, _ = ntk.forward(inputs)
        full, _ = TwoLayerCNN(w0 + scale[:, None, None, None] * eps * direction, Q, VARRHO).forward(inputs)
        remainders.append(((full - lin).abs().max() / (full - base).abs().max()).item())
    # the remainder relative to the first-order change is itself first order in the step
    assert remainders[1] < 0.15 * remainders[0]
    assert remainders[1] < 0.01


def test_linearized_backward_matches_autograd():
    inputs, w0 = _setup()
    scale = torch.tensor([3.0, 0.5, 7.0], dtype=torch.float64)
    ntk = LinearizedCNN(w0, Q, VARRHO, 0.0, 0, scale)
    gen = torch.Generator().manual_seed(2)
    ntk.delta = torch.randn(w0.shape, generator=gen, dtype=torch.float64)
    y = torch.randint(0, w0.shape[1], (len(inputs),), generator=gen)

    logits, cache = ntk.forward(inputs)
    dlogits = torch.softmax(logits, -1) - torch.nn.functional.one_hot(y, w0.shape[1])
    grad = ntk.backward(inputs, cache, dlogits)

    delta = ntk.delta.clone().requires_grad_(True)
    ntk.delta = delta
    logits_ag, _ = ntk.forward(inputs)
    loss = torch.nn.functional.cross_entropy(logits_ag.reshape(-1, w0.shape[1]), y.repeat(3), reduction="sum")
    (grad_ag,) = torch.autograd.grad(loss, delta)
    assert torch.allclose(grad, grad_ag, atol=1e-12, rtol=1e-9)


def test_linearized_backward_into_a_buffer():
    """``grad`` given: the gradient is written there whatever it held, or added with
    ``accumulate``; the cache is consumed, so each call gets a copy."""
    inputs, w0 = _setup()
    ntk = LinearizedCNN(w0, Q, VARRHO, 0.0, 0, torch.tensor([3.0, 0.5, 7.0], dtype=torch.float64))
    ntk.delta = torch.randn(w0.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    logits, cache = ntk.forward(inputs)
    dlogits = torch.randn(logits.shape, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    grad = ntk.backward(inputs, cache.clone(), dlogits)
    into = torch.full_like(w0, 7.0)
    assert ntk.backward(inputs, cache.clone(), dlogits, into).data_ptr() == into.data_ptr()
    assert torch.equal(into, grad)
    ntk.backward(inputs, cache.clone(), dlogits, into, accumulate=True)
    assert torch.allclose(into, 2 * grad, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("sigma", [1e-3, 1e-4])
def test_standardized_ntk_moves_the_logits(sigma):
    """At small σ_0 the raw tangent features are tiny; after standardization a unit Δ′ changes
    the logits by order one."""
    inputs, _ = _setup()
    w0 = init_weights(0, "ntk-test", [0, 1, 2], 3, 2, 11, sigma, dtype=torch.float64)
    scale = tangent_scale(inputs, w0, Q, VARRHO, 0.0, 0, probe_seeds=[0, 1, 2])
    gen = torch.Generator().manual_seed(3)
    direction = torch.randn(w0.shape, generator=gen, dtype=torch.float64)
    direction /= direction.flatten(1).norm(dim=1)[:, None, None, None]
    raw = LinearizedCNN(w0, Q, VARRHO, 0.0, 0)
    std = LinearizedCNN(w0, Q, VARRHO, 0.0, 0, scale)
    base, _ = raw.forward(inputs)
    raw.delta, std.delta = direction, direction
    moved_raw = (raw.forward(inputs)[0] - base).abs().max()
    moved_std = (std.forward(inputs)[0] - base).abs().max()
    assert moved_raw < 1e-2
    assert moved_std > 100 * moved_raw
    assert 0.05 < moved_std < 20


def test_the_kept_terms_are_read_not_consumed_by_the_backward_pass_in_blocks(monkeypatch):
    """With the terms at W_0 kept (:meth:`fix_inputs`), the forward pass hands out the kept
    slopes themselves and the backward pass leaves them as they are, in one pass (a copy) and
    in blocks of units (a scratch block): the gradient of a model that keeps nothing."""
    from multiview import model
    from multiview.config import DataConfig
    from multiview.data import MultiViewDistribution

    cfg = DataConfig(k=3, d=24, P=8, n_train=12, sigma_p=0.1, s=1.0, C_p=1, noise_model="orthogonal")
    dist = MultiViewDistribution(cfg, seed=2)
    batch = dist.sample(12, "train", dtype=torch.float64)
    inputs = dist.inputs(batch, seen=True)
    w0 = init_weights(3, "model", [0, 1, 2], 3, 16, dist.weight_dim(12), 0.3, dtype=torch.float64)
    plain, fixed = LinearizedCNN(w0, Q, VARRHO, 0.3, 0), LinearizedCNN(w0, Q, VARRHO, 0.3, 0)
    fixed.fix_inputs(inputs)
    for blocks in (False, True):
        if blocks:
            monkeypatch.setattr(model, "BLOCK_SCRATCH_BYTES", 16 * 12 * 8 * 8)  # one class a block
        logits, cache = fixed.forward(inputs)
        assert fixed._fixed is not None and cache is fixed._fixed[2]
        kept = cache.clone()
        dlogits = torch.randn(logits.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        into = torch.empty_like(w0)
        got = fixed.backward(inputs, cache, dlogits, into, mean_over=12)
        assert got.data_ptr() == into.data_ptr() and torch.equal(cache, kept)
        _, fresh = plain.forward(inputs)
        expected = plain.backward(inputs, fresh, dlogits, torch.empty_like(w0), mean_over=12)
        assert torch.equal(into, expected)
        assert (model.unit_blocks(inputs, kept, tuple(w0.shape)) is not None) == blocks


def test_fixed_inputs_give_the_same_steps():
    """Reusing the terms at W_0 for the training inputs changes nothing, step after step (the
    backward pass reads the kept terms without consuming them)."""
    inputs, w0 = _setup()
    scale = torch.tensor([3.0, 0.5, 7.0], dtype=torch.float64)
    plain = LinearizedCNN(w0, Q, VARRHO, 0.0, 0, scale)
    fixed = LinearizedCNN(w0, Q, VARRHO, 0.0, 0, scale)
    fixed.fix_inputs(inputs)
    gen = torch.Generator().manual_seed(4)
    y = torch.randint(0, w0.shape[1], (len(inputs),), generator=gen)
    for _ in range(3):
        grads = []
        for model in (plain, fixed):
            logits, cache = model.forward(inputs)
            dlogits = torch.softmax(logits, -1) - torch.nn.functional.one_hot(y, w0.shape[1])
            grads.append((logits, model.backward(inputs, cache, dlogits)))
            model.delta -= 0.1 * grads[-1][1]
        assert torch.equal(grads[0][0], grads[1][0])
        assert torch.equal(grads[0][1], grads[1][1])
    # other inputs are computed afresh
    other = DenseInputs(inputs.X[:3].clone())
    assert torch.equal(plain.forward(other)[0], fixed.forward(other)[0])


# --- random features ----------------------------------------------------------------------------


def _orthogonal_test_inputs(n: int = 9, P: int = 4, k2: int = 4, n_train: int = 6):
    """Unseen examples under the orthogonal model: every noise direction is fresh."""
    gen = torch.Generator().manual_seed(5)
    coef = torch.rand(n, P, k2, generator=gen, dtype=torch.float64)
    norm = 0.5 + torch.rand(n, P, generator=gen, dtype=torch.float64)
    return OrthogonalInputs(coef, norm, torch.full((n,), -1), n_train, fresh_key=11)


def test_random_features_are_the_cnn_with_one_neuron_per_feature():
    """φ_{r,f}(X) = Σ_p ReLU~(⟨w_{r,f}, x_p⟩): the logits of a CNN whose F "classes" have one neuron
    each, chunk by chunk the same (fresh noise coordinates of unseen examples included)."""
    dense, _ = _setup()
    ortho = _orthogonal_test_inputs()
    for inputs, D, init_std in ((dense, 11, 0.0), (ortho, 4 + 6 * 4, 0.3)):
        W = init_weights(0, "rf-test", [0, 1], 5, 1, D, 0.5, dtype=torch.float64)  # R = 2, F = 5
        cnn = TwoLayerCNN(W, Q, VARRHO, init_std, init_key=3)
        for chunk in (len(inputs), 4):
            phi = random_feature_map(inputs, W[:, :, 0], Q, VARRHO, init_std, 3, chunk)
            expected = batched_logits(cnn, inputs, chunk).permute(1, 0, 2)
            assert phi.shape == (len(inputs), 2, 5)
            assert torch.allclose(phi, expected, rtol=1e-12, atol=1e-14)
    W = init_weights(0, "rf-test", [0, 1], 5, 1, 11, 0.5, dtype=torch.float64)[:, :, 0]
    explicit = smoothed_relu(torch.einsum("rfd,npd->nrfp", W, dense.X), Q, VARRHO).sum(-1)
    assert torch.allclose(random_feature_map(dense, W, Q, VARRHO, 0.0, 0), explicit, rtol=1e-12)


def test_random_features_readout_forward_backward_and_scratch():
    gen = torch.Generator().manual_seed(6)
    phi = torch.randn(7, 2, 5, generator=gen, dtype=torch.float64)  # (n, R, F)
    readout = torch.randn(2, 3, 5, generator=gen, dtype=torch.float64)  # (R, k, F)
    rf = RandomFeatures(readout)
    assert rf.params is readout
    logits, cache = rf.forward(phi)
    expected = torch.stack([phi[:, r] @ readout[r].T for r in range(2)])  # (R, n, k)
    assert torch.allclose(logits, expected, rtol=1e-12) and cache is phi
    dlogits = torch.randn(2, 7, 3, generator=gen, dtype=torch.float64)
    leaf = readout.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((RandomFeatures(leaf).forward(phi)[0] * dlogits).sum(), leaf)
    assert torch.allclose(rf.backward(phi, cache, dlogits), grad, rtol=1e-12)
    assert rf.scratch_bytes_per_example(phi) == 3 * 2 * (5 + 3) * 8
    # into a buffer: written there whatever it held, or added to it with ``accumulate``
    into = torch.full_like(readout, 7.0)
    assert rf.backward(phi, cache, dlogits, into) is into
    assert torch.allclose(into, grad, rtol=1e-12)
    assert rf.backward(phi, cache, dlogits, into, accumulate=True) is into
    assert torch.allclose(into, 2 * grad, rtol=1e-12)


# --- the linearized CNN -------------------------------------------------------------------------


def test_the_linearization_at_zero_is_the_cnn_also_on_fresh_noise():
    """At Δ′ = 0 the linearized CNN is the CNN at W_0, with the same initial coordinates on the
    noise of unseen examples (σ_0 and the initialization's key); Δ′ has none there."""
    inputs = _orthogonal_test_inputs()
    w0 = init_weights(0, "ntk-test", [0, 1], 3, 2, 4 + 6 * 4, 0.2, dtype=torch.float64)  # R = 2 ≠ k = 3
    ntk = LinearizedCNN(w0, Q, VARRHO, 0.3, init_key=9)
    assert torch.equal(ntk.scale, torch.ones(2, dtype=torch.float64))
    cnn = TwoLayerCNN(w0, Q, VARRHO, 0.3, init_key=9)
    assert torch.allclose(ntk.forward(inputs)[0], cnn.forward(inputs)[0], rtol=1e-12)
    # a step Δ′ along the feature coordinates only moves the logits through them
    ntk.delta = torch.zeros_like(w0)
    ntk.delta[..., :4] = 1e-6
    moved = TwoLayerCNN(w0 + ntk.delta, Q, VARRHO, 0.3, init_key=9).forward(inputs)[0]
    lin = ntk.forward(inputs)[0]
    assert (lin - moved).abs().max() < 1e-3 * (moved - cnn.forward(inputs)[0]).abs().max()


class _CountingInputs(DenseInputs):
    """Dense inputs that count the pre-activation products taken on them."""

    products = 0

    def preactivations(self, W, fresh_std=0.0, fresh_key=0):
        type(self).products += 1
        return super().preactivations(W, fresh_std, fresh_key)


def test_fixed_inputs_skip_the_product_at_w0():
    dense, w0 = _setup()
    inputs = _CountingInputs(dense.X)
    ntk = LinearizedCNN(w0, Q, VARRHO, 0.0, 0)
    ntk.fix_inputs(inputs)
    _CountingInputs.products = 0
    ntk.forward(inputs)
    assert _CountingInputs.products == 1  # only ⟨Δ′, x_p⟩
    ntk.forward(_CountingInputs(dense.X.clone()))
    assert _CountingInputs.products == 3  # other inputs: ⟨w⁰, x_p⟩ as well
    assert ntk.scratch_bytes_per_example(dense) == 5 * 5 * w0[..., 0].numel() * 8


def test_tangent_scale_is_the_documented_estimate():
    """c_r = 1/√(mean over probes, units and examples of ⟨t_{u,x}, v⟩²), v ~ N(0, I) drawn in
    float64 from replica r's probe seed, one (k·m, D) block per probe; four probes unless told."""
    inputs, w0 = _setup(R=2)
    R, k, m, d = w0.shape
    seeds = [5, 8]
    pre = torch.einsum("rkmd,npd->rkmnp", w0, inputs.X)
    slope = (pre.clamp(0, VARRHO) / VARRHO) ** (Q - 1)
    t = torch.einsum("rkmnp,npd->rkmnd", slope, inputs.X).reshape(R, k * m, -1, d)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    total = torch.zeros(R, dtype=torch.float64)
    for _ in range(4):
        v = torch.stack([torch.randn(k * m, d, generator=g, dtype=torch.float64) for g in gens])
        total += torch.einsum("rund,rud->run", t, v).pow(2).sum((1, 2))
    expected = (total / (4 * k * m * len(inputs))).rsqrt()
    got = tangent_scale(inputs, w0, Q, VARRHO, 0.0, 0, probe_seeds=seeds)
    assert torch.allclose(got, expected, rtol=1e-10)
    f32 = tangent_scale(DenseInputs(inputs.X.float()), w0.float(), Q, VARRHO, 0.0, 0, seeds)
    assert f32.dtype == torch.float32 and torch.allclose(f32.double(), expected, rtol=1e-4)


def test_the_scale_is_made_on_the_device_of_the_weights(same_on_meta_default):
    """The tangent scale's accumulator and the default scale are made next to W_0 (the probe
    directions are drawn on the CPU and moved): under a meta default device the scale and the
    linearized logits are those of the CPU."""
    dense, w0 = _setup()
    orthogonal = _orthogonal_test_inputs()
    w0_orthogonal = init_weights(0, "ntk-test", [0, 1], 3, 2, 4 + 6 * 4, 0.2, dtype=torch.float64)
    same_on_meta_default(lambda: tangent_scale(dense, w0, Q, VARRHO, 0.0, 0, probe_seeds=[0, 1, 2], chunk=4))
    for inputs, w in ((dense, w0), (orthogonal, w0_orthogonal)):
        ones = same_on_meta_default(lambda inputs=inputs, w=w: LinearizedCNN(w, Q, VARRHO, 0.3, 9).scale)
        assert ones.tolist() == [1.0] * w.shape[0]
        logits, _ = same_on_meta_default(
            lambda inputs=inputs, w=w: LinearizedCNN(w, Q, VARRHO, 0.3, 9).forward(inputs)
        )
        assert logits.abs().max() > 0


def test_the_readout_gradient_is_divided_and_its_row_norms_given_when_asked():
    """``mean_over`` divides the readout's gradient, ``grad_norms`` receives its rows' norms."""
    gen = torch.Generator().manual_seed(2)
    phi = torch.randn(6, 2, 5, generator=gen, dtype=torch.float64)
    rf = RandomFeatures(torch.randn(2, 3, 5, generator=gen, dtype=torch.float64))
    logits, cache = rf.forward(phi)
    dlogits = torch.randn(logits.shape, generator=gen, dtype=torch.float64)
    plain = rf.backward(phi, cache, dlogits)
    norms = torch.full((2, 3), 7.0, dtype=torch.float64)
    third = rf.backward(phi, cache, dlogits, mean_over=3, grad_norms=norms)
    assert torch.allclose(third, plain / 3, rtol=1e-14)
    assert torch.equal(norms, third.norm(dim=-1))
    assert torch.equal(rf.backward(phi, cache, dlogits, mean_over=1), plain)
    into = torch.zeros_like(plain)
    assert torch.equal(rf.backward(phi, cache, dlogits, into, mean_over=2), plain / 2)


def test_the_linearized_backward_consumes_a_fresh_cache_and_gives_the_norms():
    """Without kept terms the cache is this call's own and is consumed; ``grad_norms`` receives
    the norms of Δ′'s gradient rows."""
    inputs, w0 = _setup()
    ntk = LinearizedCNN(w0, Q, VARRHO, 0.0, 0)
    ntk.delta = torch.randn(w0.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    logits, cache = ntk.forward(inputs)
    dlogits = torch.randn(logits.shape, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    expected = ntk.backward(inputs, cache.clone(), dlogits)
    fresh = cache.clone()
    norms = torch.empty(w0.shape[:-1], dtype=torch.float64)
    got = ntk.backward(inputs, fresh, dlogits, torch.empty_like(w0), mean_over=4, grad_norms=norms)
    assert not torch.equal(fresh, cache)  # consumed
    assert torch.allclose(got, expected / 4, rtol=1e-14) and torch.equal(norms, got.norm(dim=-1))
