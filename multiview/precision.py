"""Process-wide speed knobs for the training step: TF32 / bf16 matrix products and a compiled
activation. They change rounding, not the model; ``benchmarks/gpu.sh`` checks that results stay
within tolerance of exact float32.

``train.matmul``: ``exact`` (default), ``tf32`` (CUDA's TensorFloat-32 products), or ``bf16``
(the pre-activation and weight-gradient products in bfloat16, accumulated and returned in the
run's dtype). ``train.compile``: fuse the smoothed ReLU and its derivative with ``torch.compile``.
"""

from __future__ import annotations

import torch

from multiview.config import TrainConfig

_state = {"matmul_dtype": None, "compiled": None}


def configure(cfg: TrainConfig, device: torch.device) -> None:
    """Apply ``cfg.matmul`` and ``cfg.compile`` for the runs that follow in this process."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = cfg.matmul == "tf32"
        torch.backends.cudnn.allow_tf32 = cfg.matmul == "tf32"
    _state["matmul_dtype"] = torch.bfloat16 if cfg.matmul == "bf16" else None
    if cfg.compile and _state["compiled"] is None:
        from multiview import model

        _state["compiled"] = torch.compile(model.act_and_grad_eager, dynamic=True)
    elif not cfg.compile:
        _state["compiled"] = None


def mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b, in bfloat16 when configured (the result keeps a's dtype)."""
    low = _state["matmul_dtype"]
    if low is None:
        return a @ b
    return (a.to(low) @ b.to(low)).to(a.dtype)


def compiled_activation():
    return _state["compiled"]
