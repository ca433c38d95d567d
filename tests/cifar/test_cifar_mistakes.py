"""Which test images which models get wrong: wrong sets, their Jaccard indices, what the ensemble fixes."""

from __future__ import annotations

import pytest
import torch

from multiview.cifar.mistakes import independent_jaccard, jaccard_matrix, wrong_set_overlap, wrong_sets


def _logits(right: list[list[bool]], y: torch.Tensor) -> torch.Tensor:
    """Logits (M, N, 2) that get image n right exactly where ``right[m][n]``."""
    r = torch.tensor(right, dtype=torch.bool)
    good = torch.nn.functional.one_hot(y, 2).float()
    return torch.where(r[..., None], good, 1 - good)


def test_wrong_sets_and_their_jaccard():
    y = torch.tensor([0, 1, 0, 1])
    W = wrong_sets(_logits([[1, 1, 0, 0], [1, 0, 0, 1]], y), y)
    assert W.tolist() == [[False, False, True, True], [False, True, True, False]]
    inter, jac = jaccard_matrix(W)
    assert inter.tolist() == [[2, 1], [1, 2]] and jac[0, 1] == pytest.approx(1 / 3)
    assert independent_jaccard(torch.tensor([0.5, 0.0]))[0, 1] == 0.0
    assert independent_jaccard(torch.tensor([0.5, 0.5]))[0, 1] == pytest.approx(0.25 / 0.75)


def test_what_the_ensemble_fixes_and_breaks():
    y = torch.tensor([0, 1, 0, 1, 0])
    single = _logits([[1, 1, 0, 0, 0], [1, 0, 0, 1, 0], [0, 1, 0, 1, 0]], y)
    ensemble = _logits([[1, 1, 0, 1, 1]], y)[0]
    out = wrong_set_overlap(y, single, ensemble, test_index=torch.tensor([10, 11, 12, 13, 14]))
    assert out["single"]["errors"] == [3, 3, 3]
    assert out["single"]["missed_by_count"] == [0, 3, 0, 2]  # images missed by 0, 1, 2, 3 models
    assert out["single"]["missed_by_all"] == 2 and out["single"]["missed_by_any"] == 5
    assert out["wrong"]["ensemble"] == [12]  # in the numbering of the full test set
    assert out["ensemble"]["fixed"] == 4 and out["ensemble"]["fixed_majority"] == 1
    assert out["ensemble"]["broken"] == 0


def test_students_against_the_ensemble_and_their_teachers():
    y = torch.tensor([0, 1, 0, 1])
    single = _logits([[1, 0, 0, 1], [0, 1, 0, 1]], y)
    ensemble = _logits([[1, 1, 0, 1]], y)[0]
    self_kd = _logits([[1, 1, 0, 1], [0, 1, 1, 1]], y)
    out = wrong_set_overlap(y, single, ensemble, kd=self_kd, self_kd=self_kd)
    assert out["kd"]["errors"] == [1, 1]
    assert out["self_kd"]["teacher_errors"] == [2, 2]
    assert out["self_kd"]["teacher_errors_fixed"] == [0.5, 0.5]
    assert out["self_kd"]["new_errors"] == [0, 0]
