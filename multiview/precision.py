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
