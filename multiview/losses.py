"""Losses and training objectives on logits: cross-entropy, the paper's KD term, practical KD.

Every loss takes logits of shape (..., n, k) and returns the **sum over the n examples** with
the leading axes kept, so that seeds batched on a leading axis stay independent and chunks of
examples can be accumulated. Objectives wrap a loss with the labels (and teacher logits) of a
training set; the trainer differentiates them with respect to the logits only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

PAD_EXAMPLES = 16
"""The examples of :func:`log_softmax_classes`' middle-axis route are padded to a multiple of
this many: a whole number of the CPU's vectors (16 float32 numbers on AVX-512, 8 on AVX2), so
that the library's kernel takes every example on its vectorized path."""


def log_softmax_classes(logits: Tensor) -> Tensor:
    """log softmax over the classes, the last axis of ``logits`` (..., n, k): the numbers of
    ``torch.log_softmax(logits, -1)``, bit for bit, in its layout.

    On a CPU the library's kernel for a last axis of a few classes is slow (85 µs on (8, 180, 6)
    float32 logits, one thread); its kernel for a middle axis does the same arithmetic in the
    same order, vectorized across examples (13 µs, forward and backward together 47 µs instead
    of 137 µs, ``benchmarks/bench_fusion.py``). The classes are moved to a middle axis, the
    examples padded to a multiple of :data:`PAD_EXAMPLES` with zeros (whose own log softmax is
    dropped), and the result laid out as the logits are. That route is taken only where a
    check on this machine found it equal to the library's last-axis kernel, bit for bit, for
    this dtype and number of classes (:func:`middle_axis_route_agrees`), else the last-axis
    kernel is called.
    """
    if (
        logits.device.type != "cpu"
        or logits.dim() < 2
        or not middle_axis_route_agrees(logits.dtype, logits.shape[-1])
    ):
        return torch.log_softmax(logits, dim=-1)
    return log_softmax_middle_axis(logits)


def log_softmax_middle_axis(logits: Tensor) -> Tensor:
    """:func:`log_softmax_classes`' route, taken unchecked: logits (..., n, k) → their log softmax
    over k, computed over a middle axis of the (..., k, n padded) transposed logits."""
    n = logits.shape[-2]
    padded = F.pad(logits.transpose(-1, -2), (0, -n % PAD_EXAMPLES))
    return torch.log_softmax(padded, dim=-2)[..., :n].transpose(-1, -2).contiguous()


@functools.cache
def middle_axis_route_agrees(dtype: torch.dtype, k: int) -> bool:
    """Whether :func:`log_softmax_classes`' middle-axis route gives the library's last-axis
    numbers on this machine, for ``dtype`` and k classes: both routes, forward and backward, on
    4,096 rows of logits spread over six orders of magnitude, compared bit for bit (once per
    process). On this project's CPU (AVX-512) it holds for fewer classes than one vector holds:
    k ≤ 15 in float32, k ≤ 8 in float64 (``tests/test_losses.py`` checks the verdict against a
    comparison on 40 times as many logits)."""
    if not dtype.is_floating_point:
        return False
    g = torch.Generator().manual_seed(k)
    scale = 10 ** torch.empty(2, 2048, 1, dtype=torch.float64).uniform_(-3, 3, generator=g)
    probe = (torch.randn(2, 2048, k, generator=g, dtype=torch.float64) * scale).to(dtype)
    grad_out = torch.randn(2, 2048, k, generator=g, dtype=torch.float64).to(dtype)
    out_a, grad_a = output_and_grad(log_softmax_last_axis, probe, grad_out)
    out_b, grad_b = output_and_grad(log_softmax_middle_axis, probe, grad_out)
    return same_bits(out_a, out_b) and same_bits(grad_a, grad_b)


def log_softmax_last_axis(logits: Tensor) -> Tensor:
    """The library's last-axis log softmax, ``torch.log_softmax(logits, -1)``: the reference of
    :func:`middle_axis_route_agrees`."""
    return torch.log_softmax(logits, dim=-1)


def output_and_grad(
    route: Callable[[Tensor], Tensor], logits: Tensor, grad_out: Tensor
) -> tuple[Tensor, Tensor]:
    """``route(logits)`` and its gradient in ``logits`` against ``grad_out`` (both of the logits'
    shape), with autograd on whatever mode the caller is in (``no_grad``, ``inference_mode``)."""
    with torch.inference_mode(False), torch.enable_grad():
        leaf = logits.clone().requires_grad_()
        out = route(leaf)
        (grad,) = torch.autograd.grad(out, leaf, grad_out)
    return out.detach(), grad


def same_bits(a: Tensor, b: Tensor) -> bool:
    """Whether two floating-point tensors of one shape and dtype hold the same bits (unlike
    ``torch.equal``, −0 differs from +0)."""
    as_int = {2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a.view(as_int), b.view(as_int))


def cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    """Σ_n −log softmax(F(X_n))_{y_n}. logits (..., n, k), y (n,) → (...)."""
    logp = log_softmax_classes(logits)
    idx = y.expand(*logits.shape[:-1]).unsqueeze(-1)
    return -logp.gather(-1, idx).squeeze(-1).sum(-1)


def truncated_tempered_probs(logits: Tensor, tau: float) -> Tensor:
    """logit^τ of Theorem 3: softmax_i( min{τ²·F_i, 1} / τ ). (..., n, k) → same shape."""
    return torch.softmax(torch.clamp(tau * tau * logits, max=1.0) / tau, dim=-1)


def theory_kd_coefficient(student: Tensor, teacher: Tensor, tau: float) -> Tensor:
    """(logit^τ_i(F, X) − logit^τ_i(G, X))^−, the one-sided factor of the KD update (Thm 3).

    Non-positive; negative only where the student's tempered probability of class i falls below
    the teacher's. student (..., n, k), teacher broadcastable to it → (..., n, k).
    """
    diff = truncated_tempered_probs(student, tau) - truncated_tempered_probs(teacher, tau)
    return diff.clamp(max=0.0)


def practical_kd_loss(student: Tensor, teacher: Tensor, y: Tensor, t: float, temperature: float) -> Tensor:
    """Σ_n [ t·CE(S(X_n), y_n) + (1 − t)·T²·H(softmax(T(X_n)/T), softmax(S(X_n)/T)) ].

    H is the cross-entropy against the teacher's tempered distribution (Hinton et al.'s
    soft-target term, scaled by T² so its gradient does not shrink with the temperature).
    student (..., n, k), teacher broadcastable, y (n,) → (...).
    """
    soft = torch.softmax(teacher / temperature, dim=-1)
    h = -(soft * log_softmax_classes(student / temperature)).sum(-1).sum(-1)
    return t * cross_entropy(student, y) + (1 - t) * temperature**2 * h


def margin_correct(logits: Tensor, y: Tensor) -> Tensor:
    """(..., n) bool: F_y(X) > F_i(X) for every i ≠ y (ties are errors, as in the paper's err)."""
    own = logits.gather(-1, y.expand(*logits.shape[:-1]).unsqueeze(-1)).squeeze(-1)
    other = logits.scatter(-1, y.expand(*logits.shape[:-1]).unsqueeze(-1), float("-inf"))
    return own > other.max(-1).values


# --------------------------------------------------------------------------------------------
# Objectives
# --------------------------------------------------------------------------------------------


class LabelObjective:
    """Cross-entropy on the labels. Replicas form runs of ``group_size`` consecutive members
    whose logits are averaged before the loss (``group_size`` > 1 is "training the average")."""

    def __init__(self, y: Tensor, group_size: int = 1) -> None:
        self.y = y
        self.group_size = group_size

    def combine(self, logits: Tensor) -> Tensor:
        """(R, n, k) replica logits → (G, n, k) run logits, G = R / group_size."""
        if self.group_size == 1:
            return logits
        R, n, k = logits.shape
        return logits.view(R // self.group_size, self.group_size, n, k).mean(1)

    def __call__(self, run_logits: Tensor, idx: Tensor | slice) -> tuple[Tensor, Tensor]:
        """(surrogate, report), each (G,): sums over the chunk's examples ``idx`` (positions in
        the training set, or a slice of them)."""
        loss = cross_entropy(run_logits, self.y[idx])
        return loss, loss


class PracticalKDObjective(LabelObjective):
    """t·CE + (1 − t)·T²·H(S, T) against fixed teacher logits (G or 1, N, k) on the training set."""

    def __init__(self, y: Tensor, teacher: Tensor, t: float, temperature: float) -> None:
        super().__init__(y)
        self.teacher = teacher
        self.t = t
        self.temperature = temperature

    def __call__(self, run_logits: Tensor, idx: Tensor | slice) -> tuple[Tensor, Tensor]:
        loss = practical_kd_loss(run_logits, self.teacher[:, idx], self.y[idx], self.t, self.temperature)
        return loss, loss


class TheoryKDObjective(LabelObjective):
    """The update of Theorem 3: label cross-entropy plus (η′/η)·E[(logit^τ_i(F) − logit^τ_i(G))^−·∇F_i].

    The KD part is not the gradient of a loss; it enters as the surrogate
    Σ_n Σ_i stopgrad(c_{n,i})·F_i(X_n) whose derivative in F_i is c_{n,i} = (η′/η)·(·)^−. The
    reported loss is the label cross-entropy plus Σ_i |(logit^τ_i(F) − logit^τ_i(G))^−|, how far
    the student's tempered probabilities still fall below the teacher's: it reaches 0 only when
    the labels are fit and the one-sided term has nothing left to push.
    """

    def __init__(self, y: Tensor, teacher: Tensor, tau: float, eta_ratio: float) -> None:
        super().__init__(y)
        self.teacher = teacher
        self.tau = tau
        self.eta_ratio = eta_ratio

    def __call__(self, run_logits: Tensor, idx: Tensor | slice) -> tuple[Tensor, Tensor]:
        ce = cross_entropy(run_logits, self.y[idx])
        coef = theory_kd_coefficient(run_logits.detach(), self.teacher[:, idx], self.tau)
        surrogate = ce + self.eta_ratio * (coef * run_logits).sum(dim=(-1, -2))
        return surrogate, ce.detach() - coef.sum(dim=(-1, -2))
