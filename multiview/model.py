"""The learner: the smoothed ReLU and the paper's two-layer CNN with a leading seed axis (spec §2).

    F_i(X) = Σ_{r∈[m]} Σ_{p∈[P]} ReLU~(⟨w_{i,r}, x_p⟩),     W ∈ R^{R×k×m×D}

No bias, no trainable second layer (each neuron is hard-wired to its class with weight 1). The
leading axis R holds independent replicas (seeds); D is the patch dimension d (or 2k + N·P under
the orthogonal noise model, :mod:`multiview.inputs`). The forward pass is one matrix product of
all patches (n·P, D) with all neurons of all replicas (D, R·k·m); the backward pass is one more.
The gradient is written out by hand so that no autograd graph over the (n·P, R·k·m)
pre-activations is ever built.
"""

from __future__ import annotations

import torch
from torch import Tensor

from multiview import precision
from multiview.inputs import Inputs
from multiview.seeding import generator


def smoothed_relu(z: Tensor, q: int, varrho: float) -> Tensor:
    """ReLU~ of the paper: 0 for z ≤ 0, z^q/(q·ϱ^(q−1)) on [0, ϱ], z − (1 − 1/q)·ϱ above.

    C¹ at ϱ (value ϱ/q and slope 1 from both sides). Elementwise; any shape; differentiable.
    """
    zc = z.clamp(min=0)
    low = zc.clamp(max=varrho)
    return torch.where(zc <= varrho, low**q / (q * varrho ** (q - 1)), zc - (1 - 1 / q) * varrho)


def smoothed_relu_grad(z: Tensor, q: int, varrho: float) -> Tensor:
    """dReLU~/dz: 0 for z ≤ 0, (z/ϱ)^(q−1) on [0, ϱ], 1 above. Elementwise; any shape."""
    t = z.clamp(0, varrho) / varrho
    return torch.where(z > 0, t ** (q - 1), torch.zeros((), dtype=z.dtype, device=z.device))


def act_and_grad(a: Tensor, q: int, varrho: float) -> tuple[Tensor, Tensor]:
    """ReLU~(a) and ReLU~′(a); ``a`` may be overwritten. Compiled when ``train.compile`` is on
    (:func:`multiview.precision.compiled`)."""
    return precision.compiled(act_and_grad_eager)(a, q, varrho)


def logits_and_slopes(
    a: Tensor, q: int, varrho: float, n: int, P: int, shape: tuple[int, ...]
) -> tuple[Tensor, Tensor]:
    """The logits (R, n, k) and the slopes ReLU~′(a) (R·k·m, n·P) of pre-activations ``a``
    (R·k·m, n·P), which may be overwritten. With ``train.compile`` on, one compiled pass
    (:func:`fused_logits_and_slopes`); otherwise a few in-place passes."""
    if precision.compiling():
        return precision.compiled(fused_logits_and_slopes)(a, q, varrho, n, P, shape)
    act, slopes = act_and_grad_eager(a, q, varrho)
    return sum_units(act, n, P, shape), slopes


def fused_logits_and_slopes(
    a: Tensor, q: int, varrho: float, n: int, P: int, shape: tuple[int, ...]
) -> tuple[Tensor, Tensor]:
    """:func:`logits_and_slopes` written without in-place operations, so that a compiler fuses
    the activation, its derivative and the sums into one pass over ``a``."""
    R, k, m, _ = shape
    t = a.clamp(0, varrho) * (1.0 / varrho)
    g = (a > 0).to(a.dtype) if q == 1 else t
    for _ in range(q - 2):
        g = g * t
    act = (a - varrho).clamp(min=0) + (varrho / q) * t * g
    return act.view(R, k, m, n, P).sum((2, 4)).permute(0, 2, 1), g


def act_and_grad_eager(a: Tensor, q: int, varrho: float) -> tuple[Tensor, Tensor]:
    """ReLU~(a) and ReLU~′(a) in a few passes; ``a`` is overwritten with ReLU~(a).

    With t = clamp(a, 0, ϱ)/ϱ: ReLU~′(a) = t^(q−1) and ReLU~(a) = (ϱ/q)·t^q + max(a − ϱ, 0),
    which is the paper's piecewise formula on every piece (t = 1 above ϱ, t = 0 below 0).
    """
    t = a.clamp(0, varrho).mul_(1.0 / varrho)
    g = int_power(t, q - 1) if q > 1 else (a > 0).to(a.dtype)
    act = a.sub_(varrho).clamp_(min=0).addcmul_(t, g, value=varrho / q)
    return act, g


def int_power(t: Tensor, e: int) -> Tensor:
    """t**e for an integer e ≥ 1 by repeated squaring (a new tensor; several times faster than
    ``pow`` on the CPU)."""
    result = None
    base = t
    while e:
        if e & 1:
            if result is None:  # take a square the loop made; copy only the caller's tensor
                result = base.clone() if base is t else base
            else:
                result.mul_(base)
        e >>= 1
        if e:
            base = base * base  # a new tensor: ``result`` may hold the previous one
    assert result is not None
    return result


def sum_units(values: Tensor, n: int, P: int, shape: tuple[int, ...]) -> Tensor:
    """(R·k·m, n·P) per-unit, per-patch values → (R, n, k) logits: the sum over the m neurons of
    each class and over patches."""
    R, k, m, _ = shape
    return values.view(R, k, m, n, P).sum(4).sum(2).permute(0, 2, 1)


def backprop_to_weights(inputs: Inputs, slope: Tensor, dlogits: Tensor, shape: tuple[int, ...]) -> Tensor:
    """dL/dW (R, k, m, D) for logits F_i = Σ_{r,p} f(⟨w_{i,r}, x_p⟩) whose per-unit slopes
    ∂F_i/∂⟨w_{i,r}, x_p⟩ are ``slope`` (R·k·m, n·P), given dL/dF ``dlogits`` (R, n, k).

    One matrix product: (R·k·m, n·P) @ (n·P, D). ``slope`` is consumed (overwritten).
    """
    R, k, m, D = shape
    n, P = len(inputs), inputs.n_patches
    g = slope.view(R, k, m, n, P).mul_(dlogits.permute(0, 2, 1)[:, :, None, :, None])
    return inputs.weight_grad(g.view(R * k * m, n * P)).view(R, k, m, D)


def patch_scratch_bytes(inputs: Inputs, weights: Tensor, arrays: int) -> int:
    """Bytes of ``arrays`` per-patch, per-unit arrays (P, R·k·m) in the dtype of ``weights``
    (R, k, m, D): the scratch memory one example needs in forward + backward, to size chunks."""
    R, k, m, _ = weights.shape
    return arrays * inputs.n_patches * R * k * m * weights.element_size()


def init_weights(
    master_seed: int,
    stream: str,
    indices: list[int],
    k: int,
    m: int,
    d: int,
    sigma_0: float,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """(R, k, m, d) Gaussian N(0, σ_0²) weights, one CPU generator per replica index.

    Replica ``i`` depends only on (``master_seed``, ``stream``, ``i``), so batched and separate
    runs of the same indices start from identical weights.
    """
    ws = [
        torch.randn(k, m, d, generator=generator(master_seed, stream, i), dtype=torch.float64) * sigma_0
        for i in indices
    ]
    return torch.stack(ws).to(device=device, dtype=dtype)


class TwoLayerCNN:
    """R independent two-layer smoothed-ReLU CNNs held in one weight tensor.

    ``weights``: (R, k, m, D). ``forward(inputs)`` maps n examples to logits (R, n, k) and a
    cache; ``backward(inputs, cache, dlogits)`` maps dL/dlogits (R, n, k) to dL/dW (R, k, m, D).
    ``init_std`` is σ_0, the std of a weight's coordinate on a direction it never trained on, and
    ``init_key`` identifies the initialization (so those coordinates differ between models).
    """

    def __init__(
        self, weights: Tensor, q: int, varrho: float, init_std: float = 0.0, init_key: int = 0
    ) -> None:
        self.weights = weights
        self.q = q
        self.varrho = varrho
        self.init_std = init_std
        self.init_key = init_key

    @property
    def params(self) -> Tensor:
        return self.weights

    @property
    def shape(self) -> tuple[int, int, int, int]:
        R, k, m, d = self.weights.shape
        return R, k, m, d

    def preactivations(self, inputs: Inputs) -> Tensor:
        """(R·k·m, n·P) inner products ⟨w_{i,r}, x_p⟩ for every neuron and patch."""
        R, k, m, D = self.shape
        return inputs.preactivations(self.weights.reshape(R * k * m, D), self.init_std, self.init_key)

    def forward(self, inputs: Inputs) -> tuple[Tensor, Tensor]:
        pre = self.preactivations(inputs)
        return logits_and_slopes(pre, self.q, self.varrho, len(inputs), inputs.n_patches, self.shape)

    def logits(self, inputs: Inputs) -> Tensor:
        return self.forward(inputs)[0]

    def backward(self, inputs: Inputs, cache: Tensor, dlogits: Tensor) -> Tensor:
        return backprop_to_weights(inputs, cache, dlogits, self.shape)

    def scratch_bytes_per_example(self, inputs: Inputs) -> int:
        """Scratch memory one example needs in forward + backward (pre-activations, activation,
        derivative, back-propagated signal: four (P, R·k·m) arrays), to size chunks."""
        return patch_scratch_bytes(inputs, self.weights, 4)
