"""Shared test settings: deterministic, single-threaded where it matters, CPU only."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
