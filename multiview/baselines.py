"""Fixed-feature baselines (spec §5, claim 11): random features and the NTK linearization.

Both keep the paper's architecture but take feature learning away:

* :class:`RandomFeatures` freezes the first layer at a random initialization and trains a linear
  readout on φ_r(X) = Σ_p ReLU~(⟨w_r, x_p⟩) over all ``width`` neurons (features standardized to
  unit RMS on the training set, a fixed linear change of coordinates).
* :class:`LinearizedCNN` is the CNN's first-order Taylor expansion at its initialization W_0,
  F(X; W_0 + Δ) ≈ F(X; W_0) + ⟨∇_W F(X; W_0), Δ⟩, trained in Δ (the neural tangent model).

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

    def backward(self, phi: Tensor, cache: Tensor, dlogits: Tensor) -> Tensor:
        return torch.einsum("rnk,nrf->rkf", dlogits, phi)

    def scratch_bytes_per_example(self, phi: Tensor) -> int:
        R, k, F = self.readout.shape
        return 3 * R * (F + k) * self.readout.element_size()


class LinearizedCNN:
    """The CNN linearized at W_0 (R, k, m, D); trained parameters Δ (R, k, m, D), starting at 0.

    F_i(X) = F_i(X; W_0) + Σ_r Σ_p ReLU~′(⟨w⁰_{i,r}, x_p⟩)·⟨Δ_{i,r}, x_p⟩.
    """

    def __init__(self, w0: Tensor, q: int, varrho: float, init_std: float, init_key: int) -> None:
        self.w0 = w0
        self.delta = torch.zeros_like(w0)
        self.q = q
        self.varrho = varrho
        self.init_std = init_std
        self.init_key = init_key

    @property
    def params(self) -> Tensor:
        return self.delta

    def forward(self, inputs: Inputs) -> tuple[Tensor, Tensor]:
        R, k, m, D = self.w0.shape
        pre0 = inputs.preactivations(self.w0.reshape(-1, D), self.init_std, self.init_key)
        act0, grad0 = act_and_grad(pre0, self.q, self.varrho)
        lin = act0.addcmul_(grad0, inputs.preactivations(self.delta.reshape(-1, D), 0.0))
        return sum_units(lin, len(inputs), inputs.n_patches, tuple(self.w0.shape)), grad0

    def backward(self, inputs: Inputs, cache: Tensor, dlogits: Tensor) -> Tensor:
        return backprop_to_weights(inputs, cache, dlogits, tuple(self.w0.shape))

    def scratch_bytes_per_example(self, inputs: Inputs) -> int:
        return patch_scratch_bytes(inputs, self.w0, 5)
