"""The theorem checks: each verdict on constructed results, at its bound's edges, both ways."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from multiview import bounds
from multiview.config import SimConfig

MU, N_TEST = 0.5, 10_000  # μ = ½ makes the stratified error of equal strata exact: ½·e + ½·e = e


def cfg() -> SimConfig:
    return SimConfig().with_overrides({"data.mu": MU, "data.n_test": N_TEST})


def part(*errors: float, **extra) -> dict:
    """A stage's part with per-model errors equal on both strata."""
    errs = list(errors)
    return {"test_error": {"all": errs, "multi_view": errs, "single_view": errs}, **extra}


def single(*errors: float, accuracy: float = 1.0, one_view: float = 1.0, lottery: float = 1.0) -> dict:
    return part(
        *errors,
        train_accuracy=[accuracy] * len(errors),
        views={
            "exactly_one_fraction": one_view,
            "lottery_agreement": lottery,
            "lottery": {"agreement_in_M": lottery, "n_pairs_in_M": 10},
        },
        explanation={"errors_explained": [1.0] * len(errors)},
    )


def verdict(results: dict, name: str) -> dict:
    (entry,) = [b for b in bounds.check(results, cfg()) if b["name"] == name]
    return entry


def below(x: float) -> float:
    return float(np.nextafter(x, -math.inf))


def above(x: float) -> float:
    return float(np.nextafter(x, math.inf))


# --- Theorem 1: a single model ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("err", "passed"),
    [
        (0.49 * MU, True),  # the band's edges are inside it
        (0.51 * MU, True),
        (0.5 * MU, True),
        (below(0.49 * MU), False),
        (above(0.51 * MU), False),
    ],
)
def test_single_model_band_is_inclusive(err, passed):
    e = verdict({"single": single(err, err)}, "single_model")
    assert e["passed"] is passed
    assert e["bound"] == {"low": 0.49 * MU, "high": 0.51 * MU, "train_accuracy": 1.0}
    assert e["models_in_band"] == (2 if passed else 0)
    assert e["measured_over_mu"] == pytest.approx(err / MU)


def test_single_model_must_fit_the_training_set():
    e = verdict({"single": single(0.5 * MU, 0.5 * MU, accuracy=0.99)}, "single_model")
    assert e["passed"] is False and e["train_accuracy_min"] == 0.99


def test_single_model_band_judges_the_mean_over_models():
    e = verdict({"single": single(0.48 * MU, 0.52 * MU)}, "single_model")
    assert e["passed"] is True and e["models_in_band"] == 0


# --- Theorems 2-4: below a multiple of μ (strict) ---------------------------------------------


@pytest.mark.parametrize(
    ("stage", "name", "factor"),
    [
        ("ensemble", "ensemble", 0.01),
        ("kd", "knowledge_distillation", 0.01),
        ("self_kd", "self_distillation", 0.26),
        ("ensemble_of_kd", "ensemble_of_kd", 0.01),
    ],
)
def test_below_bounds_are_strict(stage, name, factor):
    at = verdict({stage: part(factor * MU, K=3)}, name)
    assert at["passed"] is False and at["bound"] == {"high": factor * MU}
    under = verdict({stage: part(below(factor * MU), K=3)}, name)
    assert under["passed"] is True
    assert under["raw"] == below(factor * MU)  # the raw test error of the stage, beside the stratified


def test_the_ensemble_claim_names_its_size():
    assert "ensemble of 7 models" in verdict({"ensemble": part(0.0, K=7)}, "ensemble")["claim"]


# --- gains relative to the ensemble's ---------------------------------------------------------

S_ERR, E_ERR = 0.2, 0.05  # a single model's and the ensemble's error: a gain far outside the noise
HALF = S_ERR - 0.5 * (S_ERR - E_ERR)  # the error at which a method keeps half the ensemble's gain


def gain_results(method: float) -> dict:
    return {
        "single": single(S_ERR, S_ERR),
        "ensemble": part(E_ERR, K=2),
        "training_average": part(method),
        "random_features": {
            "single": part(S_ERR),
            "ensemble": part(E_ERR),
            "training_average": part(method),
            "kd": part(method),
        },
        "ntk": {
            "single": part(S_ERR),
            "ensemble": part(E_ERR),
            "training_average": part(method),
            "kd": part(method),
        },
    }


@pytest.mark.parametrize(
    ("method", "no_gain", "matches", "falls_short"),
    [
        (above(HALF), True, False, True),  # keeps less than half of the ensemble's gain
        (HALF, False, True, False),  # exactly half counts as half
        (E_ERR, False, True, False),  # all of it
    ],
)
def test_gain_verdicts_both_ways(method, no_gain, matches, falls_short):
    r = gain_results(method)
    assert verdict(r, "training_average_no_gain")["passed"] is no_gain
    for family in ("random_features", "ntk"):
        assert verdict(r, f"{family}_average_matches_ensemble")["passed"] is matches
        assert verdict(r, f"{family}_kd_falls_short")["passed"] is falls_short
    e = verdict(r, "training_average_no_gain")
    assert e["bound"]["half_gain_error"] == HALF
    assert e["method_gain_fraction"] == pytest.approx((S_ERR - method) / (S_ERR - E_ERR))


def test_a_gain_within_noise_is_not_judged():
    se = math.sqrt(S_ERR * (1 - S_ERR) / N_TEST) * math.sqrt(2)
    r = gain_results(S_ERR)
    r["ensemble"] = part(S_ERR - se)  # a gain of 1·SE < 2·SE
    r["random_features"]["ensemble"] = part(S_ERR - se)
    for name in ("training_average_no_gain", "random_features_average_matches_ensemble"):
        e = verdict(r, name)
        assert e["passed"] is None and "within noise" in e["note"]
        assert "method_gain_fraction" not in e


@pytest.mark.parametrize(
    ("control", "passed"),
    [
        (above(HALF), True),  # the one-hot teacher keeps less than half of KD's gain: dark knowledge
        (HALF, False),  # exactly half: the teacher's confidence explains as much
        (E_ERR, False),  # all of it: KD's gain is the teacher's confidence, not its dark knowledge
    ],
)
def test_kd_gain_from_dark_knowledge_both_ways(control, passed):
    r = {"single": single(S_ERR, S_ERR), "kd": part(E_ERR, E_ERR), "kd_onehot": part(control, control)}
    e = verdict(r, "kd_gain_from_dark_knowledge")
    assert e["passed"] is passed
    assert e["bound"]["kd"] == E_ERR and e["bound"]["half_gain_error"] == HALF
    assert "err(kd)" in e["bound"]["rule"]
    assert e["raw"] == control


def test_kd_gain_within_noise_is_not_judged():
    r = {"single": single(S_ERR, S_ERR), "kd": part(S_ERR), "kd_onehot": part(S_ERR)}
    e = verdict(r, "kd_gain_from_dark_knowledge")
    assert e["passed"] is None and "kd gain" in e["note"]


# --- the mechanism ----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "passed"), [(0.9, True), (below(0.9), False), (1.0, True)])
def test_mechanism_fractions_are_at_least_ninety_percent(value, passed):
    r = {"single": single(0.25, 0.25, one_view=value, lottery=value)}
    assert verdict(r, "one_view_per_class")["passed"] is passed
    assert verdict(r, "lottery_at_init")["passed"] is passed


def test_lottery_without_pairs_in_M_is_not_judged():
    r = {"single": single(0.25, 0.25)}
    r["single"]["views"]["lottery"]["n_pairs_in_M"] = 0
    assert verdict(r, "lottery_at_init")["passed"] is None


def test_intervals_over_test_examples_and_over_seeds():
    e = verdict({"single": single(0.2, 0.3)}, "single_model")
    low, high = e["ci95"]["binomial"]
    assert low < e["measured"] < high
    m, sd = 0.25, math.sqrt(((0.2 - 0.25) ** 2 + (0.3 - 0.25) ** 2) / 1)
    t = 12.706204736174707  # t_{0.975, 1}: two models, one degree of freedom
    assert e["ci95"]["seeds"] == pytest.approx([m - t * sd / math.sqrt(2), m + t * sd / math.sqrt(2)])
    assert verdict({"ensemble": part(0.0, K=2)}, "ensemble")["ci95"]["seeds"] is None  # one model


def test_only_the_stages_present_are_checked():
    assert bounds.check({}, cfg()) == []
    (entry,) = bounds.check({"kd": part(0.0)}, cfg())
    assert entry["name"] == "knowledge_distillation"
    assert entry["theorem"] == "Thm 3" and entry["stage"] == "kd"


def test_every_check_names_its_theorem_and_explained_failures_point_to_pages_that_exist():
    root = Path(__file__).resolve().parents[1]
    baselines = [f"{family}_{claim}" for family in ("random_features", "ntk")
                 for claim in ("average_matches_ensemble", "kd_falls_short")]  # fmt: skip
    for name in (*bounds.THEOREMS, *baselines):
        assert bounds.theorem_of(name), name
        page = bounds.explained_in(name)
        assert page is None or (root / page.split(",")[0].split(":")[0]).exists(), name
    assert bounds.explained_in("knowledge_distillation").startswith("docs/kd.md")
    assert bounds.explained_in("ensemble") is None  # an ensemble that fails is no known limit
    assert bounds.theorem_of("ntk_kd_falls_short") == "baseline"
    assert bounds.theorem_of("kd_gain_from_dark_knowledge") == "Thm 3 control"
    assert bounds.stage_of("self_distillation") == "self_kd" and bounds.stage_of("lottery_at_init") is None
