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

from multiview import precision, threads
from multiview.inputs import Inputs, OrthogonalInputs
from multiview.seeding import generator
from multiview.train import equal_blocks


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


def act_and_grad_eager(
    a: Tensor,
    q: int,
    varrho: float,
    t: Tensor | None = None,
    g: Tensor | None = None,
    scratch: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """ReLU~(a) and ReLU~′(a) in a few passes; ``a`` is overwritten with ReLU~(a).

    With t = clamp(a, 0, ϱ)/ϱ: ReLU~′(a) = t^(q−1) and ReLU~(a) = (ϱ/q)·t^q + max(a − ϱ, 0),
    which is the paper's piecewise formula on every piece (t = 1 above ϱ, t = 0 below 0).
    ``t``, ``g`` (where ReLU~′ is written) and ``scratch``, each of a's shape, are optional
    buffers: given, nothing is allocated (the same numbers either way).
    """
    t = torch.clamp(a, 0, varrho) if t is None else torch.clamp(a, 0, varrho, out=t)
    t.mul_(1.0 / varrho)
    if q > 1:
        g = int_power(t, q - 1, g, scratch)
    else:
        g = (a > 0).to(a.dtype) if g is None else g.copy_(a > 0)
    act = a.sub_(varrho).clamp_(min=0).addcmul_(t, g, value=varrho / q)
    return act, g


def int_power(t: Tensor, e: int, out: Tensor | None = None, scratch: Tensor | None = None) -> Tensor:
    """t**e for an integer e ≥ 1 by repeated squaring (several times faster than ``pow`` on the
    CPU); ``t`` is left as it was. Written into ``out`` when given; ``scratch`` (t's shape), when
    given, holds the squares, so that with both nothing is allocated. Without ``out`` the result
    is a new tensor, or ``scratch`` itself when the result is one of the squares (an even e). The
    same products in the same order in every case: one pass per square and per factor after the
    first, the first factor never copied (but for an even e with more than one factor, when both
    buffers are given).
    """
    result = None
    base = t
    while e:
        if e & 1:
            if result is None:  # the first factor, held where it is (t itself is only read);
                # copied into ``out`` only if the squares to come would overwrite it
                result = out.copy_(base) if out is not None and base is scratch and e > 1 else base
            elif out is not None and result is not out:  # the second factor: no copy of the first
                result = torch.mul(result, base, out=out)
            elif result is t:
                result = torch.mul(t, base)
            else:
                result.mul_(base)
        e >>= 1
        if e:
            if e == 1 and result is None and out is not None:  # the last square is the result
                base = torch.mul(base, base, out=out)
            elif base is t:
                base = t * t if scratch is None else torch.mul(t, t, out=scratch)
            elif scratch is not None and result is not base:
                base = base.mul_(base)
            else:
                base = base * base  # a new tensor: ``result`` may hold the previous one
    assert result is not None
    if result is t:  # e = 1: a copy, never the caller's tensor
        result = t.clone() if out is None else out.copy_(t)
    return result


def sum_units(values: Tensor, n: int, P: int, shape: tuple[int, ...]) -> Tensor:
    """(R·k·m, n·P) per-unit, per-patch values → (R, n, k) logits: the sum over the m neurons of
    each class and over patches."""
    R, k, m, _ = shape
    return values.view(R, k, m, n, P).sum(4).sum(2).permute(0, 2, 1)


def backprop_to_weights(
    inputs: Inputs,
    slope: Tensor,
    dlogits: Tensor,
    shape: tuple[int, ...],
    out: Tensor | None = None,
    accumulate: bool = False,
    mean_over: int = 1,
    consume: bool = True,
    grad_norms: Tensor | None = None,
) -> Tensor:
    """dL/dW (R, k, m, D) for logits F_i = Σ_{r,p} f(⟨w_{i,r}, x_p⟩) whose per-unit slopes
    ∂F_i/∂⟨w_{i,r}, x_p⟩ are ``slope`` (R·k·m, n·P), given dL/dF ``dlogits`` (R, n, k); written
    into ``out`` (R, k, m, D) when given, or added with ``accumulate`` (``Inputs.weight_grad``);
    then divided by ``mean_over`` (the gradient of a mean over that many examples). ``grad_norms``
    (R, k, m), when given, receives the norm of each neuron's gradient ‖∂L/∂w_{i,r}‖.

    One matrix product: (R·k·m, n·P) @ (n·P, D). ``slope`` may be consumed (overwritten) unless
    ``consume`` is False. On a CPU, with ``out`` given and the orthogonal noise model, the units
    are taken in cache-sized blocks of whole classes (:func:`unit_blocks`): the product with
    dL/dF (into a scratch block; ``slope`` is only read), the gradient, the division and the
    norms run on one block while it is in cache, with the numbers of one pass (the same
    element-wise operations; the rows of a matrix product are independent).
    """
    R, k, m, D = shape
    n, P = len(inputs), inputs.n_patches
    groups = unit_blocks(inputs, slope, shape) if out is not None else None
    if groups is None:
        if not consume:
            slope = slope.clone()
        per_class = slope.view(R * k, m, n, P)
        g = times_class_factor(per_class, dlogits.permute(0, 2, 1).reshape(R * k, 1, n, 1), per_class)
        flat_out = None if out is None else out.view(R * k * m, D)
        grad = inputs.weight_grad(g.view(R * k * m, n * P), flat_out, accumulate).view(R, k, m, D)
        if mean_over != 1:
            grad.div_(mean_over)
        if grad_norms is not None:
            torch.linalg.vector_norm(grad, dim=-1, out=grad_norms)
        return grad
    assert out is not None
    factor = dlogits.permute(0, 2, 1).reshape(R * k, 1, n, 1)  # dL/dF_i for class i of replica r
    per_class = slope.view(R * k, m, n, P)
    flat_out = out.view(R * k, m, D)
    norms = None if grad_norms is None else grad_norms.view(R * k, m)
    scratch = torch.empty(groups * m * n * P, dtype=slope.dtype, device=slope.device)
    for start in range(0, R * k, groups):
        block = slice(start, start + groups)
        size = per_class[block].numel()  # scaled into the scratch: the slopes are only read
        signal = times_class_factor(per_class[block], factor[block], scratch[:size].view_as(per_class[block]))
        rows = flat_out[block].view(-1, D)
        inputs.weight_grad(signal.view(-1, n * P), rows, accumulate)
        if mean_over != 1:
            rows.div_(mean_over)
        if norms is not None:
            torch.linalg.vector_norm(flat_out[block], dim=-1, out=norms[block])
    return out


def times_class_factor(per_class: Tensor, factor: Tensor, out: Tensor) -> Tensor:
    """``per_class`` (G, m, n, P) times ``factor`` (G, 1, n, 1), one number per (class, example),
    written into ``out`` (G, m, n, P), which may be ``per_class`` itself.

    On a CPU, when a row of P patches is not a whole number of 64-byte vectors and m > 1, the
    factor is first spread over the patches (a (G, 1, n, P) array, 1/m of the result): the
    library's product broadcasting along a short last axis runs 2–3 times slower than a product
    broadcasting only along m (``benchmarks/bench_fusion.py``). The same products either way.
    """
    if spreads_class_factor(per_class):
        factor = factor.expand(*factor.shape[:-1], per_class.shape[-1]).contiguous()
    return torch.mul(per_class, factor, out=out)


def spreads_class_factor(per_class: Tensor) -> bool:
    """Whether :func:`times_class_factor` spreads the factor over the patches first for
    ``per_class`` (G, m, n, P): on a CPU, m > 1 and a row of P numbers not a whole number of
    64-byte vectors."""
    P = per_class.shape[-1]
    return (
        per_class.device.type == "cpu"
        and per_class.shape[1] > 1
        and bool((P * per_class.element_size()) % 64)
    )


def unit_blocks(inputs: Inputs, slope: Tensor, shape: tuple[int, ...]) -> int | None:
    """Classes (groups of m units) per block of :func:`backprop_to_weights`, or None for one pass:
    on a CPU under the orthogonal noise model, blocks of about :data:`BLOCK_SCRATCH_BYTES` of
    slopes, of equal size but the last, each at least :data:`MIN_BLOCK_UNITS` units (a product of
    fewer rows may take another of the library's kernels, whose sums come in another order)."""
    R, k, m, _ = shape
    if not isinstance(inputs, OrthogonalInputs) or slope.device.type != "cpu":
        return None
    per_class = m * slope.shape[1] * slope.element_size()
    return equal_blocks(R * k, BLOCK_SCRATCH_BYTES // per_class, -(-MIN_BLOCK_UNITS // m))


BLOCK_SCRATCH_BYTES = 6 * 2**20
"""Scratch memory of one block of :meth:`TwoLayerCNN.forward` on a CPU (three (U, block·P)
arrays), and the slopes of one block of :func:`backprop_to_weights`: small enough to stay in
cache, large enough that the per-block overhead is small (``benchmarks/``)."""

MIN_BLOCK_UNITS = 16
"""The fewest units in a block of :func:`backprop_to_weights`: products of 1 to 3 rows take
another kernel of the matrix library on this CPU (``benchmarks/bench_fusion.py``)."""


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
        self._buffers: dict[str, Tensor] = {}
        self._kept_parts: tuple[Inputs, int, list[Inputs]] | None = None

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
        """Logits (R, n, k) and the slopes ReLU~′ (R·k·m, n·P), the cache :meth:`backward` consumes.

        On a CPU, consecutive training examples are taken in blocks of at most
        :data:`BLOCK_SCRATCH_BYTES` of scratch, in buffers kept between calls: the element-wise
        passes over the pre-activations then run in cache, and only the slopes are written out,
        into a buffer that is also kept (the cache is valid until the next call; :meth:`backward`
        consumes it). The numbers are those of one pass over all examples: each block sums its
        patches (a sum whose order does not depend on the block), and the sum over each class's
        m neurons, whose order depends on the number of examples, is taken once over all of
        them, as :func:`sum_units` does; fresh noise coordinates are drawn per call, so inputs
        with unseen patches are taken whole.
        """
        R, k, m, D = self.shape
        n, P = len(inputs), inputs.n_patches
        block = self._block(inputs)
        if block >= n:
            pre = self.preactivations(inputs)
            return logits_and_slopes(pre, self.q, self.varrho, n, P, self.shape)
        U = R * k * m
        W = self.weights.reshape(U, D)
        per_unit = self._scratch("per-unit sums", U * n).view(R, k, m, n)
        slopes = self._scratch("slopes", U * n * P).view(U, n * P)
        starts = list(range(0, n, block))
        workers = min(torch.get_num_threads(), len(starts))
        scratch = [self._scratch(f"block {w}", 3 * U * block * P).view(3, -1) for w in range(workers)]

        parts = self._parts(inputs, block)

        def run_blocks(worker: int) -> None:
            pre_buf, t_buf, sq_buf = scratch[worker]
            for start, part in zip(starts[worker::workers], parts[worker::workers], strict=True):
                nb = len(part)
                size = U * nb * P
                pre = part.preactivations(W, self.init_std, self.init_key, out=pre_buf[:size].view(U, -1))
                g = slopes[:, start * P : (start + nb) * P]
                act, _ = act_and_grad_eager(
                    pre, self.q, self.varrho, t_buf[:size].view(U, -1), g, sq_buf[:size].view(U, -1)
                )
                torch.sum(act.view(R, k, m, nb, P), 4, out=per_unit[:, :, :, start : start + nb])

        if workers == 1:
            run_blocks(0)
        else:
            for done in [threads.block_pool(workers).submit(run_blocks, w) for w in range(workers)]:
                done.result()
        logits = per_unit.sum(2).permute(0, 2, 1)  # summed over the m neurons as sum_units does
        return logits, slopes

    def _block(self, inputs: Inputs) -> int:
        """Examples per block of :meth:`forward`: all of them unless on a CPU, without
        ``train.compile``, the inputs are training examples in order (orthogonal noise model)."""
        n = len(inputs)
        if (
            not isinstance(inputs, OrthogonalInputs)
            or self.weights.device.type != "cpu"
            or precision.compiling()
            or not inputs.all_seen
        ):
            return n
        per_example = patch_scratch_bytes(inputs, self.weights, 3)
        return max(1, min(n, BLOCK_SCRATCH_BYTES // per_example))

    def _parts(self, inputs: Inputs, block: int) -> list[Inputs]:
        """``inputs`` in consecutive blocks of ``block`` examples, kept for the last inputs seen
        (the training set, step after step), so that each block's columns are worked out once."""
        kept = self._kept_parts
        if kept is None or kept[0] is not inputs or kept[1] != block:
            kept = (inputs, block, [inputs[s : s + block] for s in range(0, len(inputs), block)])
            self._kept_parts = kept
        return kept[2]

    def _scratch(self, name: str, numel: int) -> Tensor:
        """The flat buffer ``name`` of ``numel`` numbers, kept between calls (grown when needed)."""
        buf = self._buffers.get(name)
        if (
            buf is None
            or buf.numel() < numel
            or buf.dtype != self.weights.dtype
            or buf.device != self.weights.device
        ):
            buf = torch.empty(numel, dtype=self.weights.dtype, device=self.weights.device)
            self._buffers[name] = buf
        return buf[:numel]

    def logits(self, inputs: Inputs) -> Tensor:
        return self.forward(inputs)[0]

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
        """dL/dW (R, k, m, D) from the cache of :meth:`forward` (consumed) and dL/dF (R, n, k);
        written into ``grad`` when given, or added to it with ``accumulate``, then divided by
        ``mean_over``; the neurons' gradient norms (R, k, m) into ``grad_norms`` when given
        (:func:`backprop_to_weights`)."""
        return backprop_to_weights(
            inputs, cache, dlogits, self.shape, grad, accumulate, mean_over, grad_norms=grad_norms
        )

    def scratch_bytes_per_example(self, inputs: Inputs) -> int:
        """Scratch memory one example needs in forward + backward (pre-activations, activation,
        derivative, back-propagated signal: four (P, R·k·m) arrays), to size chunks."""
        return patch_scratch_bytes(inputs, self.weights, 4)
