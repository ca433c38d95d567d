"""Ensembles: combining models' outputs, error against ensemble size, view coverage (Thm 2).

A class is *covered* by an ensemble when, for each of its two views, some member learned it. For
independent seeds that each learn one view per class by a fair coin, a class stays uncovered with
probability 2^(1−K), and the ensemble's single-view error is then about ½·2^(1−K) = 2^−K.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

from multiview.data import Batch
from multiview.evaluate import error_rates


def combine(logits: Tensor, how: str = "logits") -> Tensor:
    """(K, n, k) member logits → (n, k): the mean of logits (the paper's G), or the log of the
    mean of probabilities (``how = "probs"``)."""
    if how == "logits":
        return logits.mean(0)
    return torch.log(torch.softmax(logits, dim=-1).mean(0).clamp_min(1e-300))


def member_subsets(S: int, K: int, max_subsets: int, seed: int = 0) -> list[tuple[int, ...]]:
    """Up to ``max_subsets`` distinct size-K subsets of range(S), deterministic."""
    total = math.comb(S, K)
    if total <= max_subsets:
        return list(itertools.combinations(range(S), K))
    gen = torch.Generator().manual_seed(seed * 1000 + K)
    chosen: set[tuple[int, ...]] = set()
    while len(chosen) < max_subsets:
        chosen.add(tuple(sorted(torch.randperm(S, generator=gen)[:K].tolist())))
    return sorted(chosen)


def coverage(learned: Tensor) -> Tensor:
    """(k,) bool: for each class, both views are learned by some member. learned (K, k, 2)."""
    return learned.any(0).all(-1)


def ensemble_curve(
    logits: Tensor, learned: Tensor, batch: Batch, how: str = "logits", max_subsets: int = 20
) -> dict[str, list[float]]:
    """Error of ensembles of K = 1..S members, averaged over up to ``max_subsets`` subsets each.

    ``logits`` (S, n, k) test logits of S models; ``learned`` (S, k, 2). Returns per K: ``K``,
    test error ``all`` / ``multi_view`` / ``single_view``, the measured fraction of ``covered``
    classes, and the fair-coin ``predicted_single_view`` 2^−K.
    """
    S = logits.shape[0]
    out: dict[str, list[float]] = {
        k: [] for k in ("K", "all", "multi_view", "single_view", "covered", "predicted_single_view")
    }
    for K in range(1, S + 1):
        subsets = member_subsets(S, K, max_subsets)
        idx = torch.tensor(subsets)
        member_logits = torch.stack([combine(logits[list(s)], how) for s in subsets])
        errs = error_rates(member_logits, batch)
        cov = torch.stack([coverage(learned[i]) for i in idx]).float().mean()
        out["K"].append(K)
        for key in ("all", "multi_view", "single_view"):
            out[key].append(float(errs[key].mean()))
        out["covered"].append(float(cov))
        out["predicted_single_view"].append(2.0**-K)
    return out
