"""The NTK baseline: the linearized CNN is the CNN's first-order expansion, its gradient is the
autograd one, and its tangent features are standardized to unit RMS."""

from __future__ import annotations

import pytest
import torch

from multiview.baselines import LinearizedCNN, tangent_scale
from multiview.inputs import DenseInputs
from multiview.model import TwoLayerCNN, init_weights

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


def test_fixed_inputs_give_the_same_steps():
    """Reusing the terms at W_0 for the training inputs changes nothing, step after step (the
    backward pass consumes its cache, so each forward must hand out fresh copies)."""
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
