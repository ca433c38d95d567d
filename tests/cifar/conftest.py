"""Fixtures for the CIFAR-mode tests: a tiny data set written here, and the real data.

Every test runs on data it writes itself (``tiny_data``: a ``.tar.gz`` of torchvision's pickled
batches, 400 training and 300 test images of random pixels, every class equally often), except
the two that are about the real data: ``../shared/data/cifar10-jpeg.tar.gz`` beside the checkout
(its shape and class counts; that the fast network learns real images). Those skip where the
archive is absent; its decoded arrays are cached in pytest's cache folder, so only the first
session pays for decoding 60,000 JPEGs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cifar_helpers import REAL_DATA, tar_folder, write_cifar10_batches

TINY_TRAIN, TINY_TEST = 400, 300


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> tuple[Path, Path]:
    """(path of the tiny data set's .tar.gz, a cache folder for its decoded arrays)."""
    root = tmp_path_factory.mktemp("tiny-cifar")
    write_cifar10_batches(root, per_batch=TINY_TRAIN // 5, n_test=TINY_TEST, balanced=True)
    archive = tar_folder(root / "cifar-10-batches-py", root / "cifar-10-python.tar.gz", "cifar-10-batches-py")
    return archive, root / "cache"


@pytest.fixture(scope="session")
def tiny_arrays(tiny_data):
    from multiview.cifar.data import load_cifar

    path, cache = tiny_data
    return load_cifar("cifar10", path, cache_dir=cache)


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
