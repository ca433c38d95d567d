"""Which test images which models get wrong, and how those sets overlap (spec §6.2, claim "the
ensemble's gain sits on the images single models disagree on").

From test logits of the single models (S, N, k), the ensemble (N, k), and optionally KD students
(M, N, k), self-KD students (S, N, k, student i taught by single model i) and the ensemble of
the KD students: the wrong sets, their pairwise intersections and Jaccard indices (beside the
Jaccard that independent errors at the same rates would give), how many images single models
miss that the ensemble gets right, and whether students fix the images the ensemble fixes.
Test-image indices are reported in the numbering of the full test set.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from multiview.losses import margin_correct


def wrong_sets(logits: Tensor, y: Tensor) -> Tensor:
    """(..., N) bool: model gets image n wrong (ties are errors). logits (..., N, k), y (N,)."""
    return ~margin_correct(logits, y)


def jaccard_matrix(wrong: Tensor) -> tuple[Tensor, Tensor]:
    """Pairwise |A∩B| (S, S) and |A∩B|/|A∪B| (S, S) of wrong sets (S, N); empty unions give 0."""
    w = wrong.double()
    inter = w @ w.T
    sizes = w.sum(1)
    union = sizes[:, None] + sizes[None, :] - inter
    return inter, torch.where(union > 0, inter / union.clamp_min(1), torch.zeros_like(inter))


def independent_jaccard(rates: Tensor) -> Tensor:
    """Expected Jaccard of two wrong sets drawn independently at error rates p_i, p_j (S,) → (S, S)."""
    p, q = rates[:, None], rates[None, :]
    both = p * q
    union = p + q - both
    return torch.where(union > 0, both / union.clamp_min(1e-12), torch.zeros_like(both))


def _offdiag_mean(m: Tensor) -> float | None:
    S = m.shape[0]
    if S < 2:
        return None
    mask = ~torch.eye(S, dtype=torch.bool)
    return float(m[mask].mean())


def _jaccard(a: Tensor, b: Tensor) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union > 0 else 0.0


def _frac(num: Tensor, den: Tensor) -> float | None:
    return float(num.sum() / den.sum()) if den.sum() > 0 else None


def wrong_set_overlap(
    y: Tensor,
    single: Tensor,
    ensemble_logits: Tensor,
    test_index: Tensor | None = None,
    kd: Tensor | None = None,
    self_kd: Tensor | None = None,
    ensemble_of_kd: Tensor | None = None,
) -> dict[str, Any]:
    """How the wrong sets overlap, as plain data (see the module docstring). Shapes: y (N,), single
    (S, N, k), ensemble_logits (N, k), kd (M, N, k), self_kd (S, N, k), ensemble_of_kd (N, k),
    test_index (N,) the images' indices in the full test set (default 0..N−1)."""
    y = y.cpu()
    N = y.shape[0]
    index = torch.arange(N) if test_index is None else test_index.cpu()
    W = wrong_sets(single, y)  # (S, N)
    S = W.shape[0]
    ens_wrong = wrong_sets(ensemble_logits, y)
    ens_pred = ensemble_logits.argmax(-1)
    inter, jac = jaccard_matrix(W)
    rates = W.double().mean(1)
    misses = W.sum(0)  # (N,) how many single models miss each image
    majority = misses * 2 > S
    fixed_majority = majority & ~ens_wrong

    def ids(mask: Tensor) -> list[int]:
        return index[mask].tolist()

    out: dict[str, Any] = {
        "n_test": N,
        "wrong": {"single": [ids(w) for w in W], "ensemble": ids(ens_wrong)},
        "single": {
            "errors": W.sum(1).tolist(),
            "pairwise_intersection": inter.long().tolist(),
            "pairwise_jaccard": jac.tolist(),
            "mean_jaccard": _offdiag_mean(jac),
            "independent_jaccard": _offdiag_mean(independent_jaccard(rates)),
            "missed_by_count": torch.bincount(misses, minlength=S + 1).tolist(),
            "missed_by_any": int((misses > 0).sum()),
            "missed_by_all": int((misses == S).sum()),
        },
        "ensemble": {
            "errors": int(ens_wrong.sum()),
            "fixed": int(((misses > 0) & ~ens_wrong).sum()),
            "fixed_majority": int(fixed_majority.sum()),
            "broken": int(((misses < S) & ens_wrong).sum()),
            "fixed_per_seed": (W & ~ens_wrong).sum(1).tolist(),
            "broken_per_seed": (~W & ens_wrong).sum(1).tolist(),
            "single_jaccard_with_ensemble": [_jaccard(w, ens_wrong) for w in W],
        },
    }
    if kd is not None:
        K = wrong_sets(kd, y)
        out["wrong"]["kd"] = [ids(w) for w in K]
        out["kd"] = _student_block(K, kd.argmax(-1), W, ens_wrong, ens_pred, fixed_majority)
    if self_kd is not None:
        T = wrong_sets(self_kd, y)
        out["wrong"]["self_kd"] = [ids(w) for w in T]
        block = _student_block(T, self_kd.argmax(-1), W, ens_wrong, ens_pred, fixed_majority)
        n = min(T.shape[0], S)
        teacher, student = W[:n], T[:n]
        ens_right = ~ens_wrong
        block["teacher_errors"] = teacher.sum(1).tolist()
        block["teacher_errors_fixed"] = [_frac(teacher[i] & ~student[i], teacher[i]) for i in range(n)]
        block["fixed_where_ensemble_right"] = [
            _frac(teacher[i] & ens_right & ~student[i], teacher[i] & ens_right) for i in range(n)
        ]
        block["fixed_where_ensemble_wrong"] = [
            _frac(teacher[i] & ens_wrong & ~student[i], teacher[i] & ens_wrong) for i in range(n)
        ]
        block["new_errors"] = (student & ~teacher).sum(1).tolist()
        block["jaccard_with_teacher"] = [_jaccard(student[i], teacher[i]) for i in range(n)]
        out["self_kd"] = block
    if ensemble_of_kd is not None:
        out["wrong"]["ensemble_of_kd"] = ids(wrong_sets(ensemble_of_kd, y))
    return out


def _student_block(
    wrong: Tensor,
    pred: Tensor,
    single_wrong: Tensor,
    ens_wrong: Tensor,
    ens_pred: Tensor,
    fixed_majority: Tensor,
) -> dict[str, Any]:
    """Students' wrong sets (M, N) against the ensemble's: do they fix what it fixes?"""
    right = ~wrong
    base = [_frac(~w & fixed_majority, fixed_majority) for w in single_wrong]
    return {
        "errors": wrong.sum(1).tolist(),
        "fixes_ensemble_fixes": [_frac(r & fixed_majority, fixed_majority) for r in right],
        "single_fixes_ensemble_fixes": base,
        "jaccard_with_ensemble": [_jaccard(w, ens_wrong) for w in wrong],
        "prediction_agreement_with_ensemble": (pred == ens_pred).double().mean(1).tolist(),
        "right_where_ensemble_wrong": [_frac(r & ens_wrong, ens_wrong) for r in right],
    }
