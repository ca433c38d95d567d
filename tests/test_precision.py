"""The speed knobs: bf16 products stay within bfloat16 tolerance; exact is exact."""

from __future__ import annotations

import torch

from multiview import precision
from multiview.config import TrainConfig


def test_bf16_products_round_and_exact_products_do_not():
    a = torch.randn(64, 48, dtype=torch.float32)
    b = torch.randn(48, 32, dtype=torch.float32)
    try:
        precision.configure(TrainConfig(matmul="bf16"), torch.device("cpu"))
        low = precision.mm(a, b)
        assert low.dtype == torch.float32
        assert not torch.equal(low, a @ b)
        assert torch.allclose(low, a @ b, rtol=0.05, atol=0.2)
    finally:
        precision.configure(TrainConfig(matmul="exact"), torch.device("cpu"))
    assert torch.equal(precision.mm(a, b), a @ b)
