"""Process-wide speed knobs for the training step: TF32 / bf16 matrix products and compiled
functions. They change rounding, not the model; ``benchmarks/gpu.sh`` checks that results stay
within tolerance of exact float32.

``train.matmul``: ``exact`` (default), ``tf32`` (CUDA's TensorFloat-32 products), or ``bf16``
(the pre-activation and weight-gradient products in bfloat16, accumulated and returned in the
run's dtype). ``train.compile``: :func:`compiled` hands out ``torch.compile``'d versions of the
functions the model asks for (the smoothed ReLU and its derivative), each compiled once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from multiview.config import TrainConfig

_state: dict[str, Any] = {"matmul_dtype": None, "compile": False}
_cache: dict[Callable, Callable] = {}


def configure(cfg: TrainConfig, device: torch.device) -> None:
    """Apply ``cfg.matmul`` and ``cfg.compile`` for the runs that follow in this process."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = cfg.matmul == "tf32"
        torch.backends.cudnn.allow_tf32 = cfg.matmul == "tf32"
    _state["matmul_dtype"] = torch.bfloat16 if cfg.matmul == "bf16" else None
    _state["compile"] = cfg.compile


def mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b, in bfloat16 when configured (the result keeps a's dtype)."""
    low = _state["matmul_dtype"]
    if low is None:
        return a @ b
    return (a.to(low) @ b.to(low)).to(a.dtype)


_transposed_same: dict[tuple[Any, ...], bool] = {}


def thin_product(a: torch.Tensor, b: torch.Tensor, b_t: torch.Tensor) -> torch.Tensor:
    """a @ b for a (M, K) and a thin b (K, N), given also b_t = bᵀ (N, K) contiguous.

    On a CPU the matrix library takes (b_t @ aᵀ)ᵀ faster than a @ b when N is small (1.3× at
    ``paper_kd``'s backward pass, ``benchmarks/bench_fusion.py``) and, for most shapes, sums each
    entry in the same order, so the numbers are the same; for some shapes it does not (few rows,
    or N = 6). So the two are compared once per shape and layout in this process, on random
    numbers (the library's order follows the shapes, not the values), and the transposed product
    is taken only where they agree. On other devices, or in bfloat16, :func:`mm`.
    """
    if a.device.type != "cpu" or not exact_products():
        return mm(a, b)
    key = (tuple(a.shape), tuple(a.stride()), tuple(b.shape), a.dtype)
    same = _transposed_same.get(key)
    if same is None:
        gen = torch.Generator().manual_seed(0)
        ra = torch.randn(a.shape, generator=gen, dtype=a.dtype)
        rb = torch.randn(b.shape, generator=gen, dtype=b.dtype)
        same = bool(torch.equal(ra @ rb, (rb.T.contiguous() @ ra.T).T))
        _transposed_same[key] = same
    return (b_t @ a.T).T if same else a @ b


def exact_products() -> bool:
    """Whether the products run in the run's own dtype (``train.matmul`` is not ``bf16``)."""
    return _state["matmul_dtype"] is None


def compiling() -> bool:
    """Whether ``train.compile`` is on for the runs of this process."""
    return bool(_state["compile"])


def compiled(fn: Callable) -> Callable:
    """``fn`` compiled with ``torch.compile`` when ``train.compile`` is on (once per function,
    kept for the process), else ``fn`` itself."""
    if not _state["compile"]:
        return fn
    if fn not in _cache:
        _cache[fn] = torch.compile(fn, dynamic=True)
    return _cache[fn]
