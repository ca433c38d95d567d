"""Probes of what each seed learned (spec §4): Φ, Λ, learned views, the lottery, the views seeds
share, memorization.

Shapes: weights W (R, k, m, D); feature f = 2i + ℓ is v_{i,ℓ}; views are indexed ℓ ∈ {0, 1}
(the paper's 1 and 2). Feature coordinates come from the distribution
(:meth:`MultiViewDistribution.feature_coordinates`), so the probes work under both noise models.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
from torch import Tensor

from multiview.data import Batch, MultiViewDistribution


def view_correlations(weights: Tensor, dist: MultiViewDistribution) -> Tensor:
    """(R, k, m, 2): ⟨w_{i,r}, v_{i,ℓ}⟩ for each replica, class i, neuron r, view ℓ."""
    R, k, m, _ = weights.shape
    coords = dist.feature_coordinates(weights).view(R, k, m, k, 2)
    idx = torch.arange(k, device=weights.device)
    return coords[:, idx, :, idx, :].permute(1, 0, 2, 3)


def phi(corr: Tensor) -> Tensor:
    """Φ_{i,ℓ} = Σ_r [⟨w_{i,r}, v_{i,ℓ}⟩]^+ : (R, k, m, 2) → (R, k, 2)."""
    return corr.clamp(min=0).sum(2)


def lam(corr: Tensor) -> Tensor:
    """Λ_{i,ℓ} = max_r ⟨w_{i,r}, v_{i,ℓ}⟩ : (R, k, m, 2) → (R, k, 2)."""
    return corr.max(2).values


def view_probe(dist: MultiViewDistribution) -> Callable[[Tensor], dict[str, Tensor]]:
    """A probe for the trainer: weights → {"Lambda": (R, k, 2), "Phi": (R, k, 2)}."""

    def probe(weights: Tensor) -> dict[str, Tensor]:
        c = view_correlations(weights, dist)
        return {"Lambda": lam(c), "Phi": phi(c)}

    return probe


def learned_views(Lambda: Tensor, varrho: float, threshold: float) -> Tensor:
    """(R, k, 2) bool: view (i, ℓ) is learned when Λ_{i,ℓ} ≥ threshold·ϱ (a neuron is in the
    smoothed ReLU's linear regime on v_{i,ℓ})."""
    return Lambda >= threshold * varrho


def lottery(Lambda0: Tensor, margin: float) -> tuple[Tensor, Tensor]:
    """The lottery at initialization from Λ(0) (R, k, 2).

    Returns the predicted winner argmax_ℓ Λ_{i,ℓ}(0) (R, k) and membership in the paper's
    lottery-winning set M (R, k, 2): Λ_{i,ℓ}(0) ≥ (1 + margin)·Λ_{i,3−ℓ}(0).
    """
    winner = Lambda0.argmax(-1)
    other = Lambda0.flip(-1)
    in_M = (Lambda0 >= (1 + margin) * other) & (Lambda0 > 0)
    return winner, in_M


def exactly_one(learned: Tensor) -> Tensor:
    """(R, k) bool: exactly one of the two views of class i is learned."""
    return learned.sum(-1) == 1


def lottery_agreement(learned: Tensor, winner: Tensor, in_M: Tensor | None = None) -> dict[str, float]:
    """How often the view learned equals the lottery's prediction.

    Over (seed, class) pairs with exactly one view learned: ``agreement`` (fraction where that
    view is the predicted winner), ``n_pairs``; ``agreement_in_M`` restricted to classes with a
    member of M (a clear winner at init), when ``in_M`` is given.
    """
    one = exactly_one(learned)
    learned_view = learned.long().argmax(-1)
    agree = (learned_view == winner) & one
    out = {
        "agreement": float(agree.sum() / one.sum().clamp_min(1)),
        "n_pairs": int(one.sum()),
    }
    if in_M is not None:
        clear = one & in_M.any(-1)
        out["agreement_in_M"] = float((agree & clear).sum() / clear.sum().clamp_min(1))
        out["n_pairs_in_M"] = int(clear.sum())
    return out


def shared_views(learned: Tensor) -> dict[str, Tensor]:
    """Between every two seeds a, b of ``learned`` (S, k, 2):

    ``same_views`` (S, S): the fraction of classes whose learned view sets are equal;
    ``jaccard`` (S, S): |A ∩ B| / |A ∪ B| of the learned (class, view) sets.
    """
    S = learned.shape[0]
    flat = learned.reshape(S, -1).float()
    inter = flat @ flat.T
    union = flat.sum(1)[:, None] + flat.sum(1)[None, :] - inter
    same = (learned[:, None] == learned[None, :]).all(-1).float().mean(-1)
    return {"same_views": same, "jaccard": inter / union.clamp_min(1)}


def mean_offdiagonal(matrix: Tensor) -> float:
    S = matrix.shape[0]
    if S < 2:
        return float("nan")
    pairs = [float(matrix[a, b]) for a, b in itertools.combinations(range(S), 2)]
    return sum(pairs) / len(pairs)


def own_class_max(corr: Tensor, y: Tensor) -> Tensor:
    """(n, P, R, k, m) correlations → (R, n): the max over patches and the class-y neurons."""
    n, P, R, k, m = corr.shape
    idx = y.view(n, 1, 1, 1, 1).expand(n, P, R, 1, m)
    return corr.gather(3, idx).squeeze(3).amax(dim=(1, 3)).T


def memorization(
    weights: Tensor, batch: Batch, dist: MultiViewDistribution, learned: Tensor, init_std: float
) -> dict[str, dict[str, list[float]]]:
    """Noise memorization of training examples (spec §4, claim 6).

    For each seed: the mean of max_{r,p} ⟨w_{y,r}, ξ_p⟩ with the example's own noise and with
    fresh noise of the same law, for multi-view examples, single-view examples whose dominant
    view the seed learned, and single-view examples whose dominant view it did not learn.
    ``batch`` is (a prefix of) the training set, ``learned`` is (R, k, 2).
    """
    own = own_class_max(dist.own_noise_correlations(weights, batch), batch.y)
    fresh = own_class_max(dist.fresh_noise_correlations(weights, batch, init_std), batch.y)
    dom = batch.dominant.clamp(min=0)
    dom_learned = learned[:, batch.y, dom]  # (R, n)
    groups = {
        "multi_view": (~batch.single)[None, :].expand_as(own),
        "single_dominant_learned": batch.single[None, :] & dom_learned,
        "single_dominant_unlearned": batch.single[None, :] & ~dom_learned,
    }
    out: dict[str, dict[str, list[float]]] = {}
    for name, mask in groups.items():
        count = mask.sum(1)
        denom = count.clamp_min(1).to(own.dtype)
        out[name] = {
            "own_noise": _masked_means(own, mask, count, denom),
            "fresh_noise": _masked_means(fresh, mask, count, denom),
            "count": [int(c) for c in count],
        }
    return out


def _masked_means(values: Tensor, mask: Tensor, count: Tensor, denom: Tensor) -> list[float]:
    """Per row of ``values`` (R, n): the mean over the masked entries (NaN where none)."""
    avg = (values * mask).sum(1) / denom
    return [float(v) if c > 0 else float("nan") for v, c in zip(avg, count, strict=True)]
