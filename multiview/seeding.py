"""Derived random seeds: every random stream of a run comes from the master seed and a name.

``derive_seed(master, "model", i)`` is the initialization seed of model seed ``i``: it depends
only on the master seed and ``i``, so S seeds trained in one batched tensor start exactly where
S separate runs with the same indices start.
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(master: int, *names: object) -> int:
    """A 63-bit seed determined by the master seed and the names (stable across platforms)."""
    text = "/".join([str(master), *(str(n) for n in names)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def generator(master: int, *names: object) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded by :func:`derive_seed`."""
    return torch.Generator().manual_seed(derive_seed(master, *names))
