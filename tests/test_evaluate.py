"""Test error and its explanation on hand-made logits: the numbers behind every error in the tables."""

from __future__ import annotations

import math

import torch

from multiview.data import Batch
from multiview.evaluate import error_rates, explain_single_view


def make_batch(y: list[int], single: list[bool], dominant: list[int]) -> Batch:
    """A batch with the fields the evaluation reads (labels, single-view flags, dominant views)."""
    n = len(y)
    empty = torch.zeros(n, 0)
    return Batch(
        X=None,
        y=torch.tensor(y),
        single=torch.tensor(single),
        dominant=torch.tensor(dominant),
        totals=empty,
        patch_feature=empty.long(),
        z=empty,
        alpha=empty[..., None],
        noise=None,
        noise_norm=empty,
        capped=torch.zeros(n, dtype=torch.bool),
    )


# Five examples of classes 0, 1, 0, 1, 1; the last three are single-view.
BATCH = make_batch([0, 1, 0, 1, 1], [False, False, True, True, True], [-1, -1, 0, 1, 0])
# Two models. Model 0 is right on examples 0, 2, 3; model 1 only on example 1 (a tie on 4 is wrong).
LOGITS = torch.tensor(
    [
        [[2.0, 1.0], [3.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.5]],
        [[0.0, 1.0], [0.0, 1.0], [0.0, 2.0], [5.0, 1.0], [1.0, 1.0]],
    ]
)


def test_error_rates_per_model_and_stratum():
    e = error_rates(LOGITS, BATCH)
    assert e["correct"].tolist() == [[True, False, True, True, False], [False, True, False, False, False]]
    assert e["all"].tolist() == [0.4, 0.8]
    assert e["multi_view"].tolist() == [0.5, 0.5]
    assert torch.allclose(e["single_view"], torch.tensor([1 / 3, 1.0], dtype=torch.float64))
    assert all(e[key].dtype == torch.float64 for key in ("all", "multi_view", "single_view"))


def test_a_stratum_of_one_example_and_an_empty_stratum():
    one = make_batch([0, 1, 0], [False, False, True], [-1, -1, 1])
    e = error_rates(LOGITS[:, :3], one)
    assert e["single_view"].tolist() == [0.0, 1.0]
    multi = make_batch([0, 1, 0], [False, False, False], [-1, -1, -1])
    e = error_rates(LOGITS[:, :3], multi)  # two models, three examples
    assert e["single_view"].shape == (2,) and e["single_view"].dtype == torch.float64
    assert torch.isnan(e["single_view"]).all()
    assert torch.allclose(e["multi_view"], torch.tensor([1 / 3, 2 / 3], dtype=torch.float64))
    e = error_rates(LOGITS[:1, :3], multi)  # one model: one NaN
    assert e["single_view"].shape == (1,) and torch.isnan(e["single_view"]).all()


def test_single_view_errors_explained_by_the_unlearned_dominant_view():
    correct = error_rates(LOGITS, BATCH)["correct"]
    # (model, class, view) learned. Single-view examples 2, 3, 4 have dominant views (0, 0), (1, 1),
    # (1, 0). Model 0 learned (0, 0) and (1, 1): all three dominant views but that of example 4.
    # Model 1 learned only (1, 0): the dominant view of example 4.
    learned = torch.tensor([[[True, False], [False, True]], [[False, False], [True, False]]])
    out = explain_single_view(correct, learned, BATCH)
    # model 0: wrong on 4 (unlearned); model 1: wrong on 2, 3 (unlearned) and 4 (learned)
    assert out["error_if_dominant_unlearned"] == [1.0, 1.0]
    assert out["error_if_dominant_learned"] == [0.0, 1.0]
    assert out["errors_explained"] == [1.0, 2 / 3]
    assert out["fraction_dominant_unlearned"] == [1 / 3, 2 / 3]


def test_explanations_without_examples_are_nan():
    correct = torch.ones(1, 5, dtype=torch.bool)  # no errors
    learned = torch.ones(1, 2, 2, dtype=torch.bool)  # every dominant view learned
    out = explain_single_view(correct, learned, BATCH)
    assert math.isnan(out["error_if_dominant_unlearned"][0]) and math.isnan(out["errors_explained"][0])
    assert out["error_if_dominant_learned"] == [0.0] and out["fraction_dominant_unlearned"] == [0.0]
