"""Fixed-feature baselines (spec §5, claim 11): random features and the NTK linearization.

Both keep the paper's architecture but take feature learning away:

* :class:`RandomFeatures` freezes the first layer at a random initialization and trains a linear
  readout on φ_r(X) = Σ_p ReLU~(⟨w_r, x_p⟩) over all ``width`` neurons (features standardized to
  unit RMS on the training set, a fixed linear change of coordinates).
* :class:`LinearizedCNN` is the CNN's first-order Taylor expansion at its initialization W_0,
  F(X; W_0 + Δ) ≈ F(X; W_0) + ⟨∇_W F(X; W_0), Δ⟩, trained in Δ (the neural tangent model).
  Its tangent features are standardized to unit RMS on the training set, as the random features
  are: Δ = c·Δ′ with one scalar c per replica, a fixed linear change of coordinates that leaves
  the model class unchanged. Without it the tangent features at the paper's small σ_0 are of
  order (σ_0/ϱ)^(q−1) ≈ 1e-10 and no step rule moves the logits off zero in a step budget.

Both follow the learner interface of :mod:`multiview.train` with a leading replica axis R.
"""

from __future__ import annotations

import torch
from torch import Tensor

from multiview.inputs import Inputs
from multiview.model import act_and_grad, backprop_to_weights, patch_scratch_bytes, sum_units


def random_feature_map(
    inputs: Inputs, weights: Tensor, q: int, varrho: float, init_std: float, init_key: int, chunk: int = 256
) -> Tensor:
    """φ (n, R, F): Σ_p ReLU~(⟨w_{r,f}, x_p⟩) for each replica r's F frozen neurons.

    weights (R, F, D); ``init_std`` their initial std (for never-seen noise directions).
    """
    R, F, D = weights.shape
    Wf = weights.reshape(R * F, D)
    out = []
    for s in range(0, len(inputs), chunk):
        part = inputs[s : s + chunk]
        act, _ = act_and_grad(part.preactivations(Wf, init_std, init_key), q, varrho)
        out.append(act.view(R, F, len(part), part.n_patches).sum(-1).permute(2, 0, 1))
    return torch.cat(out)


class RandomFeatures:
    """R linear readouts, each on its own frozen random features.

    Inputs are precomputed features φ (n, R, F); ``readout`` is (R, k, F); logits (R, n, k).
    """

    def __init__(self, readout: Tensor) -> None:
        self.readout = readout

    @property
    def params(self) -> Tensor:
        return self.readout

    def forward(self, phi: Tensor) -> tuple[Tensor, Tensor]:
        return torch.einsum("nrf,rkf->rnk", phi, self.readout), phi

    def backward(
        self,
        phi: Tensor,
        cache: Tensor,
        dlogits: Tensor,
        grad: Tensor | None = None,
        accumulate: bool = False,
        mean_over: int = 1,
        grad_norms: Tensor | None = None,
    ) -> Tensor:
        part = torch.einsum("rnk,nrf->rkf", dlogits, phi)
        if grad is None:
            grad = part
        else:
            grad = grad.add_(part) if accumulate else grad.copy_(part)
        if mean_over != 1:
            grad.div_(mean_over)
        if grad_norms is not None:
            torch.linalg.vector_norm(grad, dim=-1, out=grad_norms)
        return grad

    def scratch_bytes_per_example(self, phi: Tensor) -> int:
        R, k, F = self.readout.shape
        return 3 * R * (F + k) * self.readout.element_size()


class LinearizedCNN:
    """The CNN linearized at W_0 (R, k, m, D), trained in Δ′ (R, k, m, D), starting at 0:

    F_i(X) = F_i(X; W_0) + c·Σ_r Σ_p ReLU~′(⟨w⁰_{i,r}, x_p⟩)·⟨Δ′_{i,r}, x_p⟩,

    i.e. the first-order expansion at W_0 + Δ with Δ = c·Δ′; ``scale`` holds c (R,), one per
    replica (:func:`tangent_scale`; 1 when not given). :meth:`fix_inputs` keeps the terms at W_0
    for one set of inputs (the training set), which do not change as Δ′ trains.
    """

    def __init__(
        self, w0: Tensor, q: int, varrho: float, init_std: float, init_key: int, scale: Tensor | None = None
    ) -> None:
        self.w0 = w0
        self.delta = torch.zeros_like(w0)
        self.q = q
        self.varrho = varrho
        self.init_std = init_std
        self.init_key = init_key
        ones = torch.ones(w0.shape[0], device=w0.device, dtype=w0.dtype)
        self.scale = ones if scale is None else scale.to(w0)
        self._fixed: tuple[Inputs, Tensor, Tensor] | None = None

    @property
    def params(self) -> Tensor:
        return self.delta

    def _at_init(self, inputs: Inputs) -> tuple[Tensor, Tensor, bool]:
        """ReLU~(⟨w⁰, x_p⟩) and c·ReLU~′(⟨w⁰, x_p⟩), each (R·k·m, n·P), and whether they are the
        kept terms of :meth:`fix_inputs` (not to be written) rather than freshly computed."""
        if self._fixed is not None and self._fixed[0] is inputs:
            return self._fixed[1], self._fixed[2], True
        R, k, m, D = self.w0.shape
        pre0 = inputs.preactivations(self.w0.reshape(-1, D), self.init_std, self.init_key)
        act0, grad0 = act_and_grad(pre0, self.q, self.varrho)
        return act0, grad0.view(R, -1).mul_(self.scale[:, None]).view(R * k * m, -1), False

    def fix_inputs(self, inputs: Inputs) -> None:
        """Keep the terms at W_0 for ``inputs``; later forward passes on this same object reuse
        them (two products a step instead of three)."""
        self._fixed = None
        act0, grad0, _ = self._at_init(inputs)
        self._fixed = (inputs, act0, grad0)

    def forward(self, inputs: Inputs) -> tuple[Tensor, Tensor]:
        """Logits (R, n, k) of the linearized network and its cache, c·ReLU~′ at W_0 (consumed by
        :meth:`backward` unless kept by :meth:`fix_inputs`)."""
        D = self.w0.shape[-1]
        act0, grad0, kept = self._at_init(inputs)
        pre = inputs.preactivations(self.delta.reshape(-1, D), 0.0)
        lin = torch.addcmul(act0, grad0, pre, out=pre) if kept else act0.addcmul_(grad0, pre)
        logits = sum_units(lin, len(inputs), inputs.n_patches, tuple(self.w0.shape))
        return logits, grad0

    def backward(
        self,
        inputs: Inputs,
        cache: Tensor,
        dlogits: Tensor,
        grad: Tensor | None = None,
        accumulate: bool = False,
        mean_over: int = 1,
        grad_norms: Tensor | None = None,
    ) -> Tensor:
        """dL/dΔ′ (R, k, m, D) (:func:`backprop_to_weights`); the cache is consumed unless it
        is the kept c·ReLU~′ at W_0 of :meth:`fix_inputs`, which is read only."""
        kept = self._fixed is not None and cache is self._fixed[2]
        return backprop_to_weights(
            inputs, cache, dlogits, tuple(self.w0.shape), grad, accumulate, mean_over, not kept, grad_norms
        )

    def scratch_bytes_per_example(self, inputs: Inputs) -> int:
        return patch_scratch_bytes(inputs, self.w0, 5)


def tangent_scale(
    inputs: Inputs,
    w0: Tensor,
    q: int,
    varrho: float,
    init_std: float,
    init_key: int,
    probe_seeds: list[int],
    probes: int = 4,
    chunk: int = 256,
) -> Tensor:
    """c (R,) = 1 / RMS over training examples and units of the tangent-feature norm ‖t_{u,x}‖,
    t_{u,x} = Σ_p ReLU~′(⟨w⁰_u, x_p⟩)·x_p, for each replica of w0 (R, k, m, D).

    ‖t‖² is estimated without forming t (D may be 2k + N·P) by E_v[⟨t, v⟩²] = ‖t‖² over
    ``probes`` Gaussian directions v ~ N(0, I_D) per unit; replica r draws its own from
    ``probe_seeds[r]``, so its scale does not depend on the other replicas in the batch.
    """
    R, k, m, D = w0.shape
    U = R * k * m
    gens = [torch.Generator().manual_seed(seed) for seed in probe_seeds]
    total = torch.zeros(R, dtype=torch.float64, device=w0.device)
    for _ in range(probes):  # one probe at a time: scratch of the size of w0
        v = torch.stack(
            [torch.randn(k * m, D, generator=g, dtype=torch.float64, device="cpu") for g in gens]
        ).to(w0)
        for s in range(0, len(inputs), chunk):
            part = inputs[s : s + chunk]
            n, P = len(part), part.n_patches
            _, slope = act_and_grad(part.preactivations(w0.reshape(U, D), init_std, init_key), q, varrho)
            t_dot_v = (slope * part.preactivations(v.reshape(U, D))).view(R, k * m, n, P).sum(-1)
            total += t_dot_v.double().pow(2).sum((1, 2))
    mean_sq = total / (probes * k * m * len(inputs))
    return mean_sq.clamp_min(1e-300).rsqrt().to(w0.dtype)
