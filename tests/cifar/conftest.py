"""Fixtures for the CIFAR-mode tests: the real data beside the checkout.

The real data is ``../shared/data/cifar10-jpeg.tar.gz`` beside the checkout; its decoded arrays
are cached in pytest's cache folder, so only the first session pays for decoding 60,000 JPEGs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cifar_helpers import REAL_DATA


@pytest.fixture(scope="session")
def real_data_path() -> Path:
    if not REAL_DATA.exists():
        pytest.skip(f"the real CIFAR-10 data is not at {REAL_DATA} (the shared folder beside the checkout)")
    return REAL_DATA


@pytest.fixture(scope="session")
def real_cache_dir(request, tmp_path_factory) -> Path:
    """A cache folder that survives test sessions (pytest's own cache, when it is enabled)."""
    cache = getattr(request.config, "cache", None)
    return (
        Path(cache.mkdir("multiview-cifar")) if cache is not None else tmp_path_factory.mktemp("cifar-cache")
    )


@pytest.fixture(scope="session")
def real_arrays(real_data_path, real_cache_dir):
    from multiview.cifar.data import load_cifar

    return load_cifar("cifar10", real_data_path, cache_dir=real_cache_dir)


@pytest.fixture(autouse=True)
def _one_thread():
    """The CIFAR tests use small tensors: one torch thread is as fast, and far faster when other
    processes keep the cores busy (OpenMP threads then wait on each other)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
