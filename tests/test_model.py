"""The smoothed ReLU against golden values, its C¹ joint, and the CNN's hand-written gradient."""

from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from multiview.config import DataConfig
from multiview.data import MultiViewDistribution
from multiview.model import (
    TwoLayerCNN,
    act_and_grad_eager,
    backprop_to_weights,
    fused_logits_and_slopes,
    init_weights,
    int_power,
    logits_and_slopes,
    smoothed_relu,
    smoothed_relu_grad,
    times_class_factor,
)

GOLDEN = json.loads((Path(__file__).parent / "golden" / "smoothed_relu.json").read_text())["smoothed_relu"]

# Explicit values for the fields whose defaults are tuned for the presets.
BASE = {"s": 1.0, "C_p": 1, "noise_model": "gaussian"}


def _dc(**kwargs) -> DataConfig:
    return DataConfig(**{**BASE, **kwargs})


@pytest.mark.parametrize("case", GOLDEN, ids=lambda c: f"q{c['q']}-r{c['varrho']}-z{c['z']:.3g}")
def test_smoothed_relu_golden(case):
    z = torch.tensor([case["z"]], dtype=torch.float64)
    assert smoothed_relu(z, case["q"], case["varrho"]).item() == pytest.approx(
        case["value"], rel=1e-12, abs=1e-15
    )


@pytest.mark.parametrize("q,varrho", [(3, 0.2), (4, 0.1), (6, 0.05), (7, 0.3)])
def test_c1_joint_at_varrho(q, varrho):
    """Value ϱ/q and slope 1 from both sides of ϱ."""
    eps = 1e-7
    z = torch.tensor([varrho - eps, varrho, varrho + eps], dtype=torch.float64, requires_grad=True)
    f = smoothed_relu(z, q, varrho)
    assert f[1].item() == pytest.approx(varrho / q, rel=1e-12)
    assert f[0].item() == pytest.approx(f[2].item(), abs=1e-6)
    (g,) = torch.autograd.grad(f.sum(), z)
    assert g[0].item() == pytest.approx(1.0, abs=1e-4)
    assert g[2].item() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("q", [3, 4, 5, 11])
def test_negative_inputs_are_zero_even_for_odd_q(q):
    z = torch.linspace(-2, 0, 50, dtype=torch.float64)
    assert torch.all(smoothed_relu(z, q, 0.1) == 0)
    assert torch.all(smoothed_relu_grad(z, q, 0.1) == 0)


@pytest.mark.parametrize("q", [1, 2, 4, 6])
def test_grad_matches_autograd(q):
    z = torch.linspace(-0.3, 0.5, 401, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(smoothed_relu(z, q, 0.1).sum(), z)
    mask = (z.detach() - 0.1).abs() > 1e-9
    assert torch.allclose(g[mask], smoothed_relu_grad(z.detach(), q, 0.1)[mask], atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_slope_stays_on_the_device_of_its_input(dtype, same_on_meta_default):
    """The zero below 0 is made next to z: under a meta default device the slopes are those of
    the CPU."""
    z = torch.linspace(-0.3, 0.5, 81, dtype=dtype)
    slope = same_on_meta_default(lambda: smoothed_relu_grad(z, 4, 0.1))
    assert slope.dtype == dtype and slope[0] == 0 and slope[-1] == 1


def test_gradient_is_nonzero_at_a_typical_init():
    W = init_weights(0, "model", [0], 4, 2, 64, 0.01, dtype=torch.float64)
    X = torch.randn(10, 8, 64, dtype=torch.float64)
    net = TwoLayerCNN(W, 4, 0.1)
    logits, cache = net.forward(X_inputs(X))
    grad = net.backward(X_inputs(X), cache, torch.ones_like(logits))
    assert grad.abs().max() > 0


def X_inputs(X):
    from multiview.inputs import DenseInputs

    return DenseInputs(X)


@pytest.mark.parametrize("noise_model", ["gaussian", "orthogonal"])
def test_forward_and_backward_match_autograd(noise_model):
    """The hand-written backward equals autograd through F_i = Σ_r Σ_p ReLU~(⟨w, x_p⟩)."""
    cfg = _dc(k=3, d=24, P=8, n_train=7, sigma_p=0.1, noise_model=noise_model)
    dist = MultiViewDistribution(cfg, seed=1)
    batch = dist.sample(7, "train", dtype=torch.float64)
    inputs = dist.inputs(batch, seen=True)
    D = dist.weight_dim(7)
    W = init_weights(3, "model", [0, 1], 3, 2, D, 0.3, dtype=torch.float64)
    net = TwoLayerCNN(W, 3, 0.2, 0.3)
    logits, cache = net.forward(inputs)
    dlogits = torch.randn_like(logits)
    grad = net.backward(inputs, cache, dlogits)

    Wr = W.clone().requires_grad_(True)
    if noise_model == "gaussian":
        X = batch.X
    else:  # explicit patches in the D = 2k + N·P coordinates
        X = torch.zeros(7, 8, D, dtype=torch.float64)
        X[..., :6] = batch.coef
        idx = torch.arange(7 * 8)
        X.view(-1, D)[idx, 6 + idx] = batch.noise_norm.reshape(-1)
    pre = torch.einsum("npd,rkmd->rnpkm", X, Wr)
    ref = smoothed_relu(pre, 3, 0.2).sum(dim=(2, 4))
    assert torch.allclose(ref, logits, atol=1e-12)
    (ref_grad,) = torch.autograd.grad((ref * dlogits).sum(), Wr)
    assert torch.allclose(ref_grad, grad, atol=1e-10)


# --- the activation passes the trainer uses -------------------------------------------------------


def _grid(varrho: float) -> torch.Tensor:
    """Pre-activations on every piece, with 0 and ϱ themselves."""
    return torch.cat(
        [
            torch.linspace(-0.3, 0.4, 141, dtype=torch.float64),
            torch.tensor([0.0, varrho], dtype=torch.float64),
        ]
    )


@pytest.mark.parametrize("q", [1, 2, 3, 4, 5])
def test_eager_and_fused_passes_give_the_smoothed_relu_and_its_slope(q):
    varrho = 0.1
    z = _grid(varrho)
    act, g = act_and_grad_eager(z.clone(), q, varrho)
    assert g.dtype == torch.float64
    assert torch.allclose(act, smoothed_relu(z, q, varrho), rtol=1e-12, atol=1e-15)
    assert torch.allclose(g, smoothed_relu_grad(z, q, varrho), rtol=1e-12, atol=1e-15)
    assert g[-2] == 0.0 and g[-1] == 1.0  # ReLU~′(0) = 0, ReLU~′(ϱ) = 1, for every q
    # the fused pass: (R·k·m, n·P) pre-activations → logits (R, n, k) and the same slopes
    R, k, m, n, P = 2, 3, 4, 5, 6
    a = torch.randn(R * k * m, n * P, generator=torch.Generator().manual_seed(q), dtype=torch.float64) * 0.1
    a[0, :2] = torch.tensor([0.0, varrho])  # the ends of the polynomial piece
    logits, slopes = fused_logits_and_slopes(a, q, varrho, n, P, (R, k, m, 7))
    assert slopes[0, 0] == 0.0 and slopes[0, 1] == 1.0
    assert logits.shape == (R, n, k)
    expected = smoothed_relu(a, q, varrho).view(R, k, m, n, P).sum((2, 4)).permute(0, 2, 1)
    assert torch.allclose(logits, expected, rtol=1e-12, atol=1e-15)
    assert torch.allclose(slopes, smoothed_relu_grad(a, q, varrho), rtol=1e-12, atol=1e-15)


def test_the_compiled_path_passes_everything_on(monkeypatch):
    """With ``train.compile`` on, the forward pass goes through the fused function (here not
    compiled, to check what it is handed)."""
    from multiview import precision

    R, k, m, n, P = 2, 3, 4, 5, 6
    a = torch.randn(R * k * m, n * P, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.1
    eager = logits_and_slopes(a.clone(), 3, 0.1, n, P, (R, k, m, 7))
    handed = []
    monkeypatch.setattr(precision, "compiling", lambda: True)
    monkeypatch.setattr(precision, "compiled", lambda fn: handed.append(fn) or fn)
    fused = logits_and_slopes(a.clone(), 3, 0.1, n, P, (R, k, m, 7))
    assert handed == [fused_logits_and_slopes]
    assert torch.allclose(fused[0], eager[0], rtol=1e-12) and torch.allclose(fused[1], eager[1], rtol=1e-12)


def test_int_power_by_repeated_squaring():
    t = torch.tensor([0.5, -1.5, 2.0], dtype=torch.float64)
    for e in range(1, 9):
        assert torch.equal(int_power(t, e), t**e), e
    assert torch.equal(t, torch.tensor([0.5, -1.5, 2.0], dtype=torch.float64))  # left as it was


class _NewMemory(TorchDispatchMode):
    """Records (operation, shape, dtype) of every tensor an operation returns in memory that none
    of its arguments holds: what the code run under it allocates (a view, an in-place result and
    an ``out=`` result share their arguments' memory)."""

    def __init__(self) -> None:
        super().__init__()
        self.tensors: list[tuple[str, tuple[int, ...], torch.dtype]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        held = {
            t.untyped_storage().data_ptr()
            for t in tree_flatten((args, kwargs))[0]
            if isinstance(t, torch.Tensor)
        }
        result = func(*args, **kwargs)
        for t in tree_flatten(result)[0]:
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in held:
                self.tensors.append((str(func), tuple(t.shape), t.dtype))
        return result


def test_int_power_into_buffers_allocates_nothing_and_gives_the_same_numbers():
    t = torch.rand(50, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 1.3
    original = t.clone()
    for e in range(1, 9):
        out, scratch = torch.full_like(t, float("nan")), torch.full_like(t, float("nan"))
        with _NewMemory() as new:
            result = int_power(t, e, out, scratch)
        assert new.tensors == [], e
        assert result is out and torch.equal(result, int_power(t, e)), e
        assert torch.equal(t, original)
        if e == 2:  # t² is written straight into ``out``: the scratch is not touched
            assert scratch.isnan().all()


class _Operations(TorchDispatchMode):
    """The names of the library operations run under it."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func.__name__)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("buffers", ["none", "out", "both"])
def test_int_power_takes_one_pass_a_product_and_copies_nothing(buffers):
    """One multiplication per square and per factor after the first, in the order of the
    squares: t⁵ = t·(t²)², t⁶ = t²·(t²)², t⁷ = (t·t²)·(t²)²; no copy once e ≥ 2 (one for t⁶ into
    both buffers)."""
    t = torch.rand(64, generator=torch.Generator().manual_seed(2), dtype=torch.float32) * 1.3
    sq = t * t
    fourth = sq * sq
    expected = {2: sq, 3: t * sq, 4: fourth, 5: t * fourth, 6: sq * fourth, 7: (t * sq) * fourth}
    for e, want in expected.items():
        out = None if buffers == "none" else torch.empty_like(t)
        scratch = torch.empty_like(t) if buffers == "both" else None
        with _Operations() as ops:
            result = int_power(t, e, out, scratch)
        squares, factors = e.bit_length() - 1, e.bit_count() - 1
        products = [name for name in ops.names if name.startswith("mul")]
        # t⁶ into both buffers: t² (in the scratch) is kept in ``out`` before t⁴ overwrites it
        copies = 1 if (buffers, e) == ("both", 6) else 0
        assert len(products) == squares + factors and len(ops.names) == len(products) + copies, (e, ops.names)
        assert result is out or buffers == "none"
        assert torch.equal(result, want), e


def test_times_class_factor_is_the_broadcast_product_whichever_way_it_goes():
    """Spread over the patches first (P = 12, 9: rows of P float32 numbers that are not whole
    64-byte vectors, m ≥ 2) or broadcast (P = 16, or m = 1): the broadcast product's numbers, into
    ``out`` or in place."""
    g = torch.Generator().manual_seed(3)
    for G, m, n, P in [(12, 4, 30, 12), (12, 2, 30, 12), (12, 4, 30, 9), (12, 4, 30, 16), (12, 1, 30, 12)]:
        values = torch.randn(G, m, n, P, generator=g)
        factor = torch.randn(G, 1, n, 1, generator=g)
        want = values * factor
        spread = m > 1 and P % 16 != 0
        out = torch.empty_like(values)
        with _Operations() as ops:
            got = times_class_factor(values, factor, out)
        assert got is out and torch.equal(got, want)
        copies = [name for name in ops.names if name.startswith(("clone", "copy_"))]
        assert len(copies) == spread, (P, m, ops.names)
        in_place = values.clone()
        assert times_class_factor(in_place, factor, in_place) is in_place and torch.equal(in_place, want)


def test_int_power_with_one_of_its_buffers():
    """Only ``out``: t² is written straight into it, nothing allocated; only ``scratch``: the
    squares are taken there and the result is a new tensor, t**e all the same."""
    t = torch.rand(50, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 1.3
    out = torch.full_like(t, float("nan"))
    with _NewMemory() as new:
        result = int_power(t, 2, out)
    assert new.tensors == [] and result is out and torch.equal(out, t * t)
    for e in range(1, 9):
        out = torch.full_like(t, float("nan"))
        assert torch.equal(int_power(t, e, out), int_power(t, e)), e
        scratch = torch.full_like(t, float("nan"))
        assert torch.equal(int_power(t, e, None, scratch), int_power(t, e)), e


@pytest.mark.parametrize("q", [1, 2, 3, 4, 6])
def test_activation_passes_into_buffers_give_the_same_numbers(q):
    z = _grid(0.1)
    act, g = act_and_grad_eager(z.clone(), q, 0.1)
    buffers = [torch.full_like(z, float("nan")) for _ in range(3)]
    a = z.clone()
    with _NewMemory() as new:
        act_b, g_b = act_and_grad_eager(a, q, 0.1, *buffers)
    assert g_b is buffers[1] and torch.equal(g_b, g) and torch.equal(act_b, act)
    assert act_b is a
    # t = clamp(z, 0, ϱ)/ϱ and the squares of t^(q−1) are taken in the buffers: nothing is
    # allocated, except for q = 1 the mask z > 0 that becomes ReLU~′
    assert new.tensors == ([("aten.gt.Scalar", tuple(z.shape), torch.bool)] if q == 1 else [])


def _orthogonal_setup(n: int = 30):
    cfg = _dc(k=3, d=24, P=8, n_train=n, sigma_p=0.1, noise_model="orthogonal")
    dist = MultiViewDistribution(cfg, seed=2)
    batch = dist.sample(n, "train", dtype=torch.float32)
    W = init_weights(3, "model", [0, 1, 2], 3, 16, dist.weight_dim(n), 0.3, dtype=torch.float32)
    return dist, batch, W


def test_forward_in_cache_sized_blocks_gives_the_numbers_of_one_pass(monkeypatch):
    """Blocks of training examples (the CPU path) give the logits, slopes and gradient of one
    pass over all examples, number for number; unseen examples are taken whole."""
    from multiview import model

    dist, batch, W = _orthogonal_setup()
    inputs = dist.inputs(batch, seen=True)
    net = TwoLayerCNN(W.clone(), 3, 0.2, 0.3)
    logits, slopes = net.forward(inputs)
    slopes = slopes.clone()
    dlogits = torch.randn_like(logits)
    grad = net.backward(inputs, slopes.clone(), dlogits)
    per_example = model.patch_scratch_bytes(inputs, W, 3)
    monkeypatch.setattr(model, "BLOCK_SCRATCH_BYTES", 4 * per_example)
    blocked = TwoLayerCNN(W.clone(), 3, 0.2, 0.3)
    assert blocked._block(inputs) == 4
    logits_b, slopes_b = blocked.forward(inputs)
    assert torch.equal(logits_b, logits) and torch.equal(slopes_b, slopes)
    # summing each block's logits whole would not do: the order of the sum over the m neurons
    # depends on the number of examples, and so its last bits
    per_block = torch.cat([net.forward(inputs[s : s + 4])[0] for s in range(0, len(inputs), 4)], dim=1)
    assert torch.allclose(per_block, logits) and not torch.equal(per_block, logits)
    assert torch.equal(blocked.backward(inputs, slopes_b, dlogits), grad)
    again, _ = blocked.forward(inputs)  # the buffers are reused: the same numbers again
    assert torch.equal(again, logits)
    unseen = dist.inputs(batch, seen=False)
    assert blocked._block(unseen) == len(unseen)
    assert blocked._block(inputs[torch.tensor([3, 1])]) == 2  # fewer examples than a block


@pytest.mark.parametrize("m, replicas", [(16, 3), (2, 8)])
def test_backward_in_blocks_of_units_gives_the_numbers_of_one_pass(monkeypatch, m, replicas):
    """Blocks of whole classes (the CPU path, with a buffer given): the gradient, its mean and the
    neurons' gradient norms are those of one pass, number for number, written, added, and with
    the slopes kept when they are not to be consumed; every block holds at least
    MIN_BLOCK_UNITS units, and too few units make one pass."""
    from multiview import model

    dist, batch, _ = _orthogonal_setup()
    D = dist.weight_dim(len(batch.y))
    W = init_weights(3, "model", list(range(replicas)), 3, m, D, 0.3, dtype=torch.float32)
    inputs = dist.inputs(batch, seen=True)
    net = TwoLayerCNN(W.clone(), 3, 0.2, 0.3)
    logits, slopes = net.forward(inputs)
    slopes = slopes.clone()
    dlogits = torch.randn_like(logits)
    n = len(inputs)
    whole = backprop_to_weights(inputs, slopes.clone(), dlogits, net.shape).div_(n)
    assert model.unit_blocks(inputs, slopes, net.shape) is None  # 6 MB hold every class
    added = backprop_to_weights(inputs, slopes.clone(), dlogits, net.shape, whole.clone(), True, n)
    assert not torch.allclose(added, whole)
    per_class = m * slopes.shape[1] * slopes.element_size()
    monkeypatch.setattr(model, "BLOCK_SCRATCH_BYTES", per_class)
    groups = model.unit_blocks(inputs, slopes, net.shape)
    assert groups == max(1, -(-model.MIN_BLOCK_UNITS // m)) and groups * m >= model.MIN_BLOCK_UNITS
    out, norms = torch.full_like(W, 7.0), torch.full(W.shape[:-1], 7.0)
    kept = slopes.clone()
    got = backprop_to_weights(
        inputs, kept, dlogits, net.shape, out, mean_over=n, consume=False, grad_norms=norms
    )
    assert got is out and torch.equal(out, whole) and torch.equal(kept, slopes)
    assert torch.equal(norms, whole.norm(dim=-1))
    backprop_to_weights(inputs, slopes.clone(), dlogits, net.shape, out, True, mean_over=n)
    assert torch.equal(out, added)
    # the same through the learner, and a consumed cache
    into = torch.empty_like(W)
    assert net.backward(inputs, slopes.clone(), dlogits, into, mean_over=n) is into
    assert torch.equal(into, whole)
    # too few units for two blocks of MIN_BLOCK_UNITS: one pass
    monkeypatch.setattr(model, "MIN_BLOCK_UNITS", replicas * 3 * m)
    assert model.unit_blocks(inputs, slopes, net.shape) is None
    # any patches of the orthogonal model are taken in blocks; the Gaussian model's in one pass
    monkeypatch.setattr(model, "MIN_BLOCK_UNITS", 16)
    assert model.unit_blocks(dist.inputs(batch, seen=False), slopes, net.shape) is not None
    dense = MultiViewDistribution(_dc(k=3, d=24, P=8, n_train=n, sigma_p=0.1), seed=2)
    assert model.unit_blocks(dense.inputs(dense.sample(n, "train"), seen=True), slopes, net.shape) is None


def test_backward_in_blocks_scales_into_one_scratch_block_made_beside_the_slopes(
    monkeypatch, same_on_meta_default
):
    """The blocked path: blocks of unequal size (the last smaller), each scaled into one scratch
    block made once on the slopes' device, so that nothing else of a block's size is allocated
    and the slopes are left as they were; the mean over 2 examples is a division by 2; the
    one-pass path consumes (overwrites) the slopes it is handed unless told not to."""
    from multiview import model

    dist, batch, W = _orthogonal_setup()  # 9 classes of 16 units
    inputs = dist.inputs(batch, seen=True)
    net = TwoLayerCNN(W.clone(), 3, 0.2, 0.3)
    logits, slopes = net.forward(inputs)
    slopes = slopes.clone()
    dlogits = torch.randn_like(logits)
    whole = backprop_to_weights(inputs, slopes.clone(), dlogits, net.shape)
    consumed = slopes.clone()
    halved = backprop_to_weights(inputs, consumed, dlogits, net.shape, torch.empty_like(W), mean_over=2)
    assert not torch.equal(consumed, slopes)  # one pass: the slopes are scaled in place
    assert torch.equal(halved, whole / 2)
    kept = slopes.clone()
    backprop_to_weights(inputs, kept, dlogits, net.shape, torch.empty_like(W), consume=False)
    assert torch.equal(kept, slopes)
    per_class = 16 * slopes.shape[1] * slopes.element_size()
    monkeypatch.setattr(model, "BLOCK_SCRATCH_BYTES", 2 * per_class)
    assert model.unit_blocks(inputs, slopes, net.shape) == 2  # blocks of 2, 2, 2, 2 and 1 classes
    out = torch.empty_like(W)
    read = slopes.clone()
    with _NewMemory() as new:
        backprop_to_weights(inputs, read, dlogits, net.shape, out, mean_over=2)
    assert torch.equal(read, slopes) and torch.allclose(out, whole / 2, rtol=1e-6)
    assert torch.equal(out, backprop_to_weights(inputs, slopes.clone(), dlogits, net.shape).div_(2))
    block = 2 * 16 * slopes.shape[1]
    made = [(op, shape) for op, shape, _ in new.tensors if "randn" not in op]  # not the product's check
    assert [op for op, shape in made if torch.Size(shape).numel() >= block // 2] == [
        "aten.empty.memory_format"
    ]
    same_on_meta_default(
        lambda: backprop_to_weights(
            inputs, slopes.clone(), dlogits, net.shape, torch.empty_like(W), mean_over=30
        )
    )


def test_the_last_block_of_units_is_never_below_the_minimum(monkeypatch):
    """Blocks are of equal size but the last; when the last would hold fewer than
    MIN_BLOCK_UNITS units, one pass instead."""
    from multiview import model

    dist, batch, W = _orthogonal_setup()  # R·k = 9 classes of 16 units
    inputs = dist.inputs(batch, seen=True)
    slopes = torch.zeros(9 * 16, len(inputs) * inputs.n_patches)
    per_class = 16 * slopes.shape[1] * 4
    for fit, expected in [(4, 3), (4.5, 3), (5, 5), (8, 5), (9, None), (1, 1)]:
        monkeypatch.setattr(model, "BLOCK_SCRATCH_BYTES", int(fit * per_class))
        got = model.unit_blocks(inputs, slopes, (3, 3, 16, 0))
        assert got == expected and (got is None or type(got) is int)
    monkeypatch.setattr(model, "MIN_BLOCK_UNITS", 40)  # 3 classes a block; blocks of 3, 3, 3
    monkeypatch.setattr(model, "BLOCK_SCRATCH_BYTES", 1)
    assert model.unit_blocks(inputs, slopes, (3, 3, 16, 0)) == 3
    monkeypatch.setattr(model, "MIN_BLOCK_UNITS", 65)  # 5 classes: blocks of 5 and 4 (64 units)
    assert model.unit_blocks(inputs, slopes, (3, 3, 16, 0)) is None


def test_the_forward_pass_keeps_its_blocks_for_the_inputs_it_last_saw(monkeypatch):
    """The blocks of the training set are cut once and reused step after step; other inputs, or
    another block size, cut anew."""
    from multiview import model

    dist, batch, W = _orthogonal_setup()
    inputs = dist.inputs(batch, seen=True)
    monkeypatch.setattr(model, "BLOCK_SCRATCH_BYTES", 4 * model.patch_scratch_bytes(inputs, W, 3))
    net = TwoLayerCNN(W.clone(), 3, 0.2, 0.3)
    first, _ = net.forward(inputs)
    parts = net._parts(inputs, 4)
    assert [len(p) for p in parts] == [4] * 7 + [2] and [p.offset for p in parts] == list(range(0, 30, 4))
    assert net._parts(inputs, 4) is parts
    again, _ = net.forward(inputs)
    assert net._parts(inputs, 4) is parts and torch.equal(again, first)
    other = dist.inputs(batch, seen=True)
    assert net._parts(other, 4) is not parts and net._parts(other, 5) is not net._parts(other, 4)


def _two_class_setup(n: int = 10):
    """k = 2 classes, one replica of two neurons each (R·k·m = 4 units, not a multiple of 3), P = 5."""
    cfg = _dc(k=2, d=16, P=5, n_train=n, sigma_p=0.1, noise_model="orthogonal")
    dist = MultiViewDistribution(cfg, seed=3)
    batch = dist.sample(n, "train", dtype=torch.float64)
    W = init_weights(4, "model", [0], 2, 2, dist.weight_dim(n), 0.3, dtype=torch.float64)
    return dist, batch, W


@pytest.mark.parametrize("q", [3, 4])
@pytest.mark.parametrize("setup", [_orthogonal_setup, _two_class_setup])
def test_blocks_run_in_buffers_kept_between_calls(q, setup, monkeypatch):
    """Every block writes its pre-activations, t and the squares of t^(q−1) into three buffers of
    one block's size, and its slopes into their place in the kept slopes: ⌈n/4⌉ blocks of 4
    examples (the last one shorter), no output resized (a warning), the numbers of one pass, and
    from the second call on no per-patch array allocated (the only floating-point tensor made is
    the (R, k, n) sum of the logits) and the slopes returned in the same memory."""
    from multiview import model

    dist, batch, W = setup()
    inputs = dist.inputs(batch, seen=True)
    R, k, m, _ = W.shape
    n, P = len(inputs), inputs.n_patches
    logits, slopes = TwoLayerCNN(W.clone(), q, 0.2, 0.3).forward(inputs)  # one pass
    monkeypatch.setattr(model, "BLOCK_SCRATCH_BYTES", 4 * model.patch_scratch_bytes(inputs, W, 3))
    blocks = []
    eager = model.act_and_grad_eager
    monkeypatch.setattr(
        model, "act_and_grad_eager", lambda a, *rest: blocks.append(a.shape[1] // P) or eager(a, *rest)
    )
    net = TwoLayerCNN(W.clone(), q, 0.2, 0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logits_b, slopes_b = net.forward(inputs)
        assert sorted(blocks, reverse=True) == [4] * (n // 4) + [n % 4]  # in any order: threads
        assert torch.equal(logits_b, logits) and torch.equal(slopes_b, slopes)
        with _NewMemory() as new:
            again, slopes_again = net.forward(inputs)
    assert torch.equal(again, logits) and torch.equal(slopes_again, slopes)
    assert slopes_again.data_ptr() == slopes_b.data_ptr()
    assert [shape for _, shape, dtype in new.tensors if dtype.is_floating_point] == [(R, k, n)]


def test_inputs_that_fit_in_one_block_are_taken_in_one_pass(monkeypatch):
    """n examples in a block of n: one pass, whose slopes are the caller's (a later call with
    other weights leaves them as they were), not a buffer kept for the next call."""
    from multiview import model

    dist, batch, W = _two_class_setup()
    inputs = dist.inputs(batch, seen=True)
    monkeypatch.setattr(model, "BLOCK_SCRATCH_BYTES", len(inputs) * model.patch_scratch_bytes(inputs, W, 3))
    net = TwoLayerCNN(W.clone(), 4, 0.2, 0.3)
    assert net._block(inputs) == len(inputs)
    _, slopes = net.forward(inputs)
    kept = slopes.clone()
    net.weights.mul_(1.5)
    _, other = net.forward(inputs)
    assert torch.equal(slopes, kept) and not torch.equal(other, kept)


def test_a_block_is_one_example_at_least_and_none_under_compile(monkeypatch):
    from multiview import model, precision

    dist, batch, W = _two_class_setup()
    inputs = dist.inputs(batch, seen=True)
    per_example = model.patch_scratch_bytes(inputs, W, 3)
    net = TwoLayerCNN(W.clone(), 4, 0.2, 0.3)
    logits, slopes = net.forward(inputs)
    for budget in (per_example, per_example - 1, 2 * per_example - 1):
        monkeypatch.setattr(model, "BLOCK_SCRATCH_BYTES", budget)
        assert net._block(inputs) == 1, budget
    one = TwoLayerCNN(W.clone(), 4, 0.2, 0.3).forward(inputs)
    assert torch.equal(one[0], logits) and torch.equal(one[1], slopes)
    monkeypatch.setattr(precision, "compiling", lambda: True)
    assert net._block(inputs) == len(inputs)  # train.compile: one pass, fused


def test_the_kept_buffers_grow_and_follow_the_weights_dtype(monkeypatch):
    """A call on more examples than the buffers hold, or with weights of another dtype, gets new
    buffers: the numbers of one pass each time."""
    from multiview import model

    dist, batch, W = _two_class_setup(n=14)
    inputs = dist.inputs(batch, seen=True)
    monkeypatch.setattr(model, "BLOCK_SCRATCH_BYTES", 4 * model.patch_scratch_bytes(inputs, W, 3))
    net = TwoLayerCNN(W.clone(), 4, 0.2, 0.3)
    for part in (inputs[0:6], inputs, inputs[0:6]):
        got = net.forward(part)
        monkeypatch.setattr(model, "BLOCK_SCRATCH_BYTES", 2**40)
        expected = TwoLayerCNN(W.clone(), 4, 0.2, 0.3).forward(part)
        monkeypatch.setattr(model, "BLOCK_SCRATCH_BYTES", 4 * model.patch_scratch_bytes(inputs, W, 3))
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    net.weights = W.float()
    got = net.forward(inputs)
    assert got[0].dtype == got[1].dtype == torch.float32
    assert torch.allclose(got[0].double(), TwoLayerCNN(W.clone(), 4, 0.2, 0.3).forward(inputs)[0], rtol=1e-5)


def test_the_kept_buffers_are_made_on_the_device_of_the_weights(monkeypatch, same_on_meta_default):
    """Under a meta default device the blocked forward pass gives the numbers of the CPU."""
    from multiview import model

    dist, batch, W = _two_class_setup()
    inputs = dist.inputs(batch, seen=True)
    monkeypatch.setattr(model, "BLOCK_SCRATCH_BYTES", 4 * model.patch_scratch_bytes(inputs, W, 3))
    same_on_meta_default(lambda: TwoLayerCNN(W.clone(), 4, 0.2, 0.3).forward(inputs))


@pytest.mark.parametrize("noise_model", ["gaussian", "orthogonal"])
def test_the_gradient_written_into_a_buffer_or_added_to_it(noise_model):
    """``grad`` given: dL/dW is written there (whatever it held), or added with ``accumulate``
    (under the orthogonal model, to the feature columns: the noise columns of consecutive training
    examples are their own, overwritten); the same for :func:`backprop_to_weights` and its ``out``."""
    cfg = _dc(k=3, d=24, P=8, n_train=7, sigma_p=0.1, noise_model=noise_model)
    dist = MultiViewDistribution(cfg, seed=1)
    batch = dist.sample(7, "train", dtype=torch.float64)
    inputs = dist.inputs(batch, seen=True)
    W = init_weights(3, "model", [0, 1], 3, 2, dist.weight_dim(7), 0.3, dtype=torch.float64)
    net = TwoLayerCNN(W, 3, 0.2, 0.3)
    logits, cache = net.forward(inputs)
    dlogits = torch.randn_like(logits)
    grad = net.backward(inputs, cache.clone(), dlogits)
    twice = 2 * grad
    if noise_model == "orthogonal":
        twice[..., 6:] = grad[..., 6:]
    stale = torch.full_like(W, 7.0)
    into = stale.clone()
    assert net.backward(inputs, cache.clone(), dlogits, into).data_ptr() == into.data_ptr()
    assert torch.equal(into, grad)
    net.backward(inputs, cache.clone(), dlogits, into, accumulate=True)
    assert torch.allclose(into, twice, rtol=1e-13, atol=1e-15)
    out = stale.clone()
    assert backprop_to_weights(inputs, cache.clone(), dlogits, net.shape, out).data_ptr() == out.data_ptr()
    assert torch.equal(out, grad)
    backprop_to_weights(inputs, cache.clone(), dlogits, net.shape, out, True)
    assert torch.allclose(out, twice, rtol=1e-13, atol=1e-15)


# --- initialization and the CNN's interface -------------------------------------------------------


def test_each_replica_is_drawn_from_its_own_named_generator():
    from multiview.seeding import generator

    W = init_weights(4, "model", [2, 0], 3, 2, 5, 0.1, dtype=torch.float32)
    assert W.shape == (2, 3, 2, 5) and W.dtype == torch.float32
    for row, i in enumerate([2, 0]):
        draw = torch.randn(3, 2, 5, generator=generator(4, "model", i), dtype=torch.float64) * 0.1
        assert torch.equal(W[row], draw.float())
    # drawn on the CPU, then moved where asked
    assert init_weights(4, "model", [0], 3, 2, 5, 0.1, device="meta").device.type == "meta"


def test_cnn_defaults_and_interface():
    from multiview.inputs import OrthogonalInputs

    W = init_weights(0, "model", [0, 1], 2, 3, 4 + 5 * 2, 0.3, dtype=torch.float64)
    net = TwoLayerCNN(W, 3, 0.2)
    assert net.init_std == 0.0 and net.init_key == 0 and net.params is W
    # unseen examples: the coordinates on their noise are drawn with the model's σ_0 and key
    gen = torch.Generator().manual_seed(1)
    unseen = OrthogonalInputs(
        torch.rand(3, 2, 4, generator=gen, dtype=torch.float64),
        torch.ones(3, 2, dtype=torch.float64),
        torch.full((3,), -1),
        5,
    )
    keyed = TwoLayerCNN(W, 3, 0.2, init_std=0.3, init_key=7)
    pre = unseen.preactivations(W.reshape(12, -1), 0.3, 7)
    assert torch.equal(keyed.preactivations(unseen), pre)
    logits = keyed.logits(unseen)
    assert torch.equal(logits, keyed.forward(unseen)[0]) and logits.shape == (2, 3, 2)
    assert torch.allclose(logits, smoothed_relu(pre, 3, 0.2).view(2, 2, 3, 3, 2).sum((2, 4)).permute(0, 2, 1))
    # four (P, R·k·m) arrays of float64 per example
    assert net.scratch_bytes_per_example(unseen) == 4 * 2 * 12 * 8


@pytest.mark.parametrize("torch_threads", [1, 2, 3])
def test_blocks_run_side_by_side_on_the_torch_threads(torch_threads, monkeypatch):
    """With T > 1 torch threads the blocks are shared by T workers of their own, off the calling
    thread: block j by worker j mod T, in its own three buffers; with one, all in the calling
    thread. The numbers of one pass, every block written (a fresh ``torch.empty`` holds NaN)."""
    from multiview import model

    dist, batch, W = _orthogonal_setup()
    inputs = dist.inputs(batch, seen=True)
    P = inputs.n_patches
    logits, slopes = TwoLayerCNN(W.clone(), 3, 0.2, 0.3).forward(inputs)  # one pass
    monkeypatch.setattr(model, "BLOCK_SCRATCH_BYTES", 3 * model.patch_scratch_bytes(inputs, W, 3))
    empty = torch.empty
    monkeypatch.setattr(torch, "empty", lambda *a, **kw: empty(*a, **kw).fill_(float("nan")))
    before = torch.get_num_threads()
    seen: list[tuple[int, int, int]] = []  # (thread, the block's first example, its buffer)
    eager = model.act_and_grad_eager

    def spy(a, q, varrho, t, g, scratch):
        seen.append((threading.get_ident(), g.storage_offset() // P, a.data_ptr()))
        return eager(a, q, varrho, t, g, scratch)

    monkeypatch.setattr(model, "act_and_grad_eager", spy)
    try:
        torch.set_num_threads(torch_threads)
        net = TwoLayerCNN(W.clone(), 3, 0.2, 0.3)
        got = net.forward(inputs)
        assert torch.equal(got[0], logits) and torch.equal(got[1], slopes)
        assert sorted(net._buffers) == sorted(
            ["per-unit sums", "slopes", *(f"block {w}" for w in range(torch_threads))]
        )
        buffers = [net._buffers[f"block {w}"].data_ptr() for w in range(torch_threads)]
        assert sorted(first for _, first, _ in seen) == list(range(0, len(inputs), 3))
        assert all(pre == buffers[(first // 3) % torch_threads] for _, first, pre in seen)
        here = {thread for thread, _, _ in seen} == {threading.get_ident()}
        assert here == (torch_threads == 1)
        seen.clear()
        assert torch.equal(net.forward(inputs)[0], logits)  # again, in the kept buffers
    finally:
        torch.set_num_threads(before)
