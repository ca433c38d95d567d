"""Losses against golden values from an independent NumPy implementation (tests/golden/make_golden.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from multiview.losses import (
    TheoryKDObjective,
    cross_entropy,
    log_softmax_classes,
    log_softmax_middle_axis,
    margin_correct,
    middle_axis_route_agrees,
    practical_kd_loss,
    same_bits,
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


def _spread_logits(shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> torch.Tensor:
    """Logits whose rows span seven orders of magnitude."""
    g = torch.Generator().manual_seed(seed)
    scale = 10 ** torch.empty(*shape[:-1], 1, dtype=torch.float64).uniform_(-4, 3, generator=g)
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dtype)


def _forward_and_backward(fn, x: torch.Tensor, grad_out: torch.Tensor):
    leaf = x.clone().requires_grad_(True)
    out = fn(leaf)
    (grad,) = torch.autograd.grad(out, leaf, grad_out)
    return out.detach(), grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [2, 6, 10, 15, 16, 20])
def test_log_softmax_over_the_classes_is_the_library_kernel_bit_for_bit(dtype, k):
    """Whichever route it takes, forward and backward, on shapes with and without leading axes
    and with numbers of examples that are and are not a multiple of the padding."""
    for seed, shape in enumerate([(8, 180, k), (3, 7, k), (50, k), (2, 3, 41, k), (1, 2048, k)]):
        x = _spread_logits(shape, dtype, seed)
        grad_out = _spread_logits(shape, dtype, seed + 100)
        want = _forward_and_backward(lambda t: torch.log_softmax(t, dim=-1), x, grad_out)
        got = _forward_and_backward(log_softmax_classes, x, grad_out)
        assert same_bits(got[0], want[0]) and same_bits(got[1], want[1]), shape
        assert got[0].stride() == want[0].stride()  # laid out as the library's result


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [3, 6, 8, 9, 10, 16])
def test_the_route_check_agrees_with_a_wide_comparison(dtype, k):
    """The one-time check of :func:`middle_axis_route_agrees` says what a comparison on 40 times
    as many logits finds: the middle-axis route equal to the last-axis kernel, or not."""
    equal = True
    for seed, shape in enumerate([(8, 180, k), (4, 5000, k), (2, 3, 41, k), (8, 6000, k)]):
        x = _spread_logits(shape, dtype, 1000 + seed)
        grad_out = _spread_logits(shape, dtype, 2000 + seed)
        want = _forward_and_backward(lambda t: torch.log_softmax(t, dim=-1), x, grad_out)
        got = _forward_and_backward(log_softmax_middle_axis, x, grad_out)
        equal &= same_bits(got[0], want[0]) and same_bits(got[1], want[1])
    assert middle_axis_route_agrees(dtype, k) == equal


class _LogSoftmaxAxes(TorchDispatchMode):
    """The axes the library's log-softmax kernels are called on."""

    def __init__(self) -> None:
        super().__init__()
        self.axes: list[int] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._log_softmax.default:
            self.axes.append(args[1] % args[0].dim())
        return func(*args, **(kwargs or {}))


def test_cross_entropy_takes_the_middle_axis_route_where_the_check_agrees(monkeypatch):
    """On a CPU, for logits (..., n, k) with the examples' axis: the middle axis where the check
    agrees, the last otherwise; one class axis alone, or another device: the last axis."""
    y = torch.randint(0, 6, (180,), generator=torch.Generator().manual_seed(0))
    for agrees in (True, False):
        monkeypatch.setattr("multiview.losses.middle_axis_route_agrees", lambda dtype, k, a=agrees: a)
        for shape in ((8, 180, 6), (180, 6)):
            with _LogSoftmaxAxes() as seen:
                cross_entropy(_spread_logits(shape, torch.float32, 0), y)
            assert seen.axes == [len(shape) - (2 if agrees else 1)], shape
        with _LogSoftmaxAxes() as seen:
            log_softmax_classes(torch.randn(6))
            log_softmax_classes(torch.randn(8, 180, 6, device="meta"))
        assert seen.axes == [0, 2]


def test_same_bits_tells_the_signs_of_zero_apart():
    assert same_bits(torch.tensor([0.0, 1.5]), torch.tensor([0.0, 1.5]))
    assert not same_bits(torch.tensor([0.0, 1.5]), torch.tensor([-0.0, 1.5]))
    assert torch.equal(torch.tensor([0.0]), torch.tensor([-0.0]))  # what torch.equal misses
    assert not same_bits(torch.zeros(2), torch.zeros(3))
    assert not same_bits(torch.zeros(2), torch.zeros(2, dtype=torch.float64))
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        zeros = torch.zeros(3, dtype=dtype)
        assert same_bits(zeros, zeros.clone()) and not same_bits(zeros, -zeros)


def test_the_route_check_runs_whatever_the_callers_mode():
    """The one-time check takes a gradient of its own: under ``torch.no_grad`` or
    ``torch.inference_mode`` it still runs, and the loss gives the library's numbers."""
    logits = _spread_logits((4, 37, 7), torch.float32, 3)
    y = torch.randint(0, 7, (37,), generator=torch.Generator().manual_seed(1))
    want = -torch.log_softmax(logits, dim=-1).gather(-1, y.expand(4, 37).unsqueeze(-1)).squeeze(-1).sum(-1)
    for mode in (torch.no_grad, torch.inference_mode):
        middle_axis_route_agrees.cache_clear()
        with mode():
            got = cross_entropy(logits, y)
        assert same_bits(got, want)
        assert middle_axis_route_agrees.cache_info().currsize == 1
