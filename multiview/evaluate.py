"""Evaluation: test error on multi-view / single-view data, and why single-view examples fail.

err(F) = Pr[∃ i ≠ y : F_i(X) ≥ F_y(X)] (ties count as errors), estimated on a fresh test set,
and split as err = (1 − μ̂)·err_{D_m} + μ̂·err_{D_s} by each test example's single-view flag.
"""

from __future__ import annotations

import torch
from torch import Tensor

from multiview.data import Batch
from multiview.losses import margin_correct


def batched_logits(model, X, chunk: int) -> Tensor:
    """(R, n, k) logits of a learner on n examples X, ``chunk`` examples at a time."""
    return torch.cat([model.forward(X[s : s + chunk])[0] for s in range(0, len(X), chunk)], dim=1)


def error_rates(logits: Tensor, batch: Batch) -> dict[str, Tensor]:
    """Per model (leading axis G): ``all``, ``multi_view``, ``single_view`` error (G,), and the
    per-example ``correct`` (G, n) bool. Rates over an empty group are NaN."""
    correct = margin_correct(logits, batch.y)
    wrong = (~correct).to(torch.float64)
    single = batch.single

    def rate(mask: Tensor) -> Tensor:
        n = int(mask.sum())
        if n == 0:
            return torch.full((logits.shape[0],), float("nan"), dtype=torch.float64)
        return wrong[:, mask].mean(1).cpu()

    return {
        "all": wrong.mean(1).cpu(),
        "multi_view": rate(~single),
        "single_view": rate(single),
        "correct": correct,
    }


def explain_single_view(correct: Tensor, learned: Tensor, batch: Batch) -> dict[str, list[float]]:
    """For each model: do single-view errors coincide with an unlearned dominant view?

    ``correct`` (G, n), ``learned`` (G, k, 2). Returns per model ``error_if_dominant_unlearned``
    (error rate on single-view test examples whose dominant view v_{y,ℓ̂} the model did not learn),
    ``error_if_dominant_learned``, ``errors_explained`` (the fraction of misclassified single-view
    examples whose dominant view is unlearned) and ``fraction_dominant_unlearned``.
    """
    single = batch.single
    y = batch.y[single]
    dom = batch.dominant[single]
    dom_learned = learned[:, y, dom]  # (G, n_s)
    wrong = ~correct[:, single]

    def ratio(num: Tensor, den: Tensor) -> list[float]:
        return [float(a) / float(b) if float(b) > 0 else float("nan") for a, b in zip(num, den, strict=False)]

    unl = ~dom_learned
    return {
        "error_if_dominant_unlearned": ratio((wrong & unl).sum(1), unl.sum(1)),
        "error_if_dominant_learned": ratio((wrong & dom_learned).sum(1), dom_learned.sum(1)),
        "errors_explained": ratio((wrong & unl).sum(1), wrong.sum(1)),
        "fraction_dominant_unlearned": ratio(unl.sum(1), torch.full_like(unl.sum(1), unl.shape[1])),
    }
