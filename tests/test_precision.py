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


def test_a_thin_product_gives_the_numbers_of_a_times_b_whichever_way_it_is_taken(monkeypatch):
    """``thin_product`` equals a @ b entry for entry on the shapes of the presets' backward
    passes and on shapes where the transposed product sums in another order (few rows, N = 6);
    each shape is decided once, and a shape judged different is taken as a @ b."""
    monkeypatch.setattr(precision, "_transposed_same", {})
    gen = torch.Generator().manual_seed(3)
    for M, K, N in [(192, 8000, 20), (144, 2160, 12), (2, 1000, 20), (400, 4000, 6), (1, 16, 40)]:
        a = torch.randn(M, K, generator=gen)
        b = torch.randn(K, N, generator=gen)
        assert torch.equal(precision.thin_product(a, b, b.T.contiguous()), a @ b)
    assert len(precision._transposed_same) == 5
    # a shape recorded as different is taken the plain way, one recorded the same the other way
    a, b = torch.randn(8, 50, generator=gen), torch.randn(50, 3, generator=gen)
    key = (tuple(a.shape), tuple(a.stride()), tuple(b.shape), a.dtype)
    precision._transposed_same[key] = False
    assert torch.equal(precision.thin_product(a, b, torch.zeros(3, 50)), a @ b)
    precision._transposed_same[key] = True
    assert torch.equal(precision.thin_product(a, b, torch.zeros(3, 50)), torch.zeros(8, 3))
