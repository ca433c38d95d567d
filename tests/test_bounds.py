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


def test_baseline_checks_are_named_by_their_family_and_nothing_else_is():
    assert bounds.explained_in("ntk_kd_falls_short") == "docs/baselines.md: the NTK baseline"
    assert bounds.explained_in("random_features_average_matches_ensemble") == (
        "docs/baselines.md: the random-feature baseline"
    )
    # a name that begins with another stage's name is no baseline check, and unknown names
    # belong to no theorem and no page
    assert bounds._family("kd_gain") is None and bounds._family("ntk_kd_falls_short") == "ntk"
    for name in ("self_kd_something", "no_such_check"):
        assert bounds.theorem_of(name) == "" and bounds.explained_in(name) is None


def test_the_bands_of_the_seeds_plot_are_those_of_the_checks():
    assert bounds.bands_over_mu() == {
        "single": (0.49, 0.51),
        "ensemble": (0.0, 0.01),
        "kd": (0.0, 0.01),
        "self_kd": (0.0, 0.26),
        "ensemble_of_kd": (0.0, 0.01),
    }


# --- the stratified error ---------------------------------------------------------------------


def test_stratified_error_weights_the_two_strata_by_mu():
    te = {"multi_view": [0.1, 0.2], "single_view": [0.5, 0.7]}
    assert bounds.stratified(te, 0.25) == pytest.approx([0.75 * 0.1 + 0.25 * 0.5, 0.75 * 0.2 + 0.25 * 0.7])


def test_an_empty_stratum_counts_only_where_its_weight_is_zero():
    nan = float("nan")
    # μ = 1: no multi-view test examples (NaN, or null in JSON), and none are needed
    assert bounds.stratified({"multi_view": [nan, None], "single_view": [0.5, 0.7]}, 1.0) == [0.5, 0.7]
    # μ = 0: likewise for the single-view stratum
    assert bounds.stratified({"multi_view": [0.1, 0.2], "single_view": [nan, None]}, 0.0) == [0.1, 0.2]
    # a stratum of positive weight without examples leaves the error unknown
    for mv, sv in (([nan], [0.5]), ([0.1], [nan])):
        (out,) = bounds.stratified({"multi_view": mv, "single_view": sv}, 0.5)
        assert math.isnan(out)


def test_checks_at_mu_zero_report_no_ratio_to_mu():
    """The ablation without single-view data (μ = 0): errors are judged, ratios to μ are absent."""
    c = SimConfig().with_overrides({"data.mu": 0.0, "data.n_test": N_TEST})
    (e,) = bounds.check({"ensemble": part(0.0, K=2)}, c)
    assert e["measured_over_mu"] is None and e["measured"] == 0.0
    assert e["passed"] is False  # err < 0.01·0 cannot hold


# --- what every entry reports -----------------------------------------------------------------


def full_results() -> dict:
    """Every stage of the synthetic protocol, with the fixed-feature baselines."""
    return {
        **gain_results(E_ERR),
        "kd": part(E_ERR, K=2),
        "kd_onehot": part(S_ERR),
        **{stage: part(E_ERR, K=2) for stage in ("self_kd", "ensemble_of_kd")},
    }


CLAIMS = {
    "single_model": "Thm 1: a single model fits the training set (100 % accuracy) and has "
    "0.49μ ≤ err ≤ 0.51μ",
    "one_view_per_class": "mechanism: exactly one view learned per (model, class) (≥ 90%)",
    "lottery_at_init": "mechanism: for classes in the lottery-winning set M (Λ_{i,ℓ}(0) ≥ (1 + 1/log²m)·"
    "Λ_{i,3−ℓ}(0)), the learned view is the lottery's winner (≥ 90%)",
    "errors_explained": "mechanism: misclassified single-view test examples have an unlearned dominant view "
    "(≥ 90%)",
    "ensemble": "Thm 2: the ensemble of 2 models has err < 0.01μ",
    "knowledge_distillation": "Thm 3: a student distilled from the ensemble has err < 0.01μ",
    "self_distillation": "Thm 4: a self-distilled student has err < 0.26μ",
    "ensemble_of_kd": "the ensemble of KD students has err < 0.01μ",
    "training_average_no_gain": "training the average of K networks recovers less than half of the "
    "ensemble's gain",
    "kd_gain_from_dark_knowledge": "mechanism of Thm 3: a student of a one-hot teacher (no dark knowledge) "
    "recovers less than half of KD's gain",
    "random_features_average_matches_ensemble": "random features: training the average recovers at least "
    "half of the ensemble's gain",
    "random_features_kd_falls_short": "random features: KD into one model of the original size recovers "
    "less than half of the ensemble's gain",
    "ntk_average_matches_ensemble": "NTK: training the average recovers at least half of the ensemble's gain",
    "ntk_kd_falls_short": "NTK: KD into one model of the original size recovers less than half of the "
    "ensemble's gain",
}


def test_every_check_in_order_with_its_claim():
    checks = bounds.check(full_results(), cfg())
    assert [(b["name"], b["claim"]) for b in checks] == list(CLAIMS.items())


def test_an_error_entry_reports_its_numbers():
    e = verdict({"ensemble": part(0.002, 0.004, K=2)}, "ensemble")
    assert e == {
        "name": "ensemble",
        "claim": CLAIMS["ensemble"],
        "measured": pytest.approx(0.003),
        "measured_over_mu": pytest.approx(0.006),
        "bound": {"high": 0.01 * MU},
        "ci95": {
            "binomial": pytest.approx(list(bounds.wilson_interval(30, N_TEST))),
            "seeds": pytest.approx(bounds.seed_interval([0.002, 0.004])),
        },
        "passed": True,
        "per_model": [0.002, 0.004],
        "raw": pytest.approx(0.003),
        "theorem": "Thm 2",
        "stage": "ensemble",
    }


def test_an_unmeasured_error_has_no_binomial_interval():
    nan = float("nan")
    e = verdict({"ensemble": part(nan, nan, K=2)}, "ensemble")
    assert math.isnan(e["measured"]) and e["ci95"] == {"binomial": None, "seeds": None}


def test_the_single_model_entry_reports_the_fit_and_the_models_in_band():
    e = verdict({"single": single(0.25, 0.3, accuracy=1.0)}, "single_model")
    assert e["train_accuracy_min"] == 1.0 and e["models_in_band"] == 1
    assert e["per_model"] == [0.25, 0.3] and e["raw"] == pytest.approx(0.275)


def test_mechanism_entries_report_their_fraction_and_bound():
    r = {"single": single(0.25, 0.25, one_view=0.95, lottery=0.93)}
    r["single"]["views"]["lottery_agreement"] = 0.7  # over every class, not only those in M
    e = verdict(r, "one_view_per_class")
    assert e == {
        "name": "one_view_per_class",
        "claim": CLAIMS["one_view_per_class"],
        "measured": 0.95,
        "measured_over_mu": None,
        "bound": {"low": 0.9},
        "ci95": {"binomial": None, "seeds": None},
        "passed": True,
        "theorem": "mechanism",
    }
    lot = verdict(r, "lottery_at_init")
    assert lot["measured"] == 0.93 and lot["all_classes"] == 0.7 and lot["pairs_in_M"] == 10


@pytest.mark.parametrize(("explained", "passed"), [([0.9], True), ([below(0.9)], False), ([0.8, 1.0], True)])
def test_errors_explained_is_at_least_ninety_percent(explained, passed):
    r = {"single": single(0.25, 0.25)}
    r["single"]["explanation"]["errors_explained"] = explained
    e = verdict(r, "errors_explained")
    assert e["passed"] is passed and e["measured"] == pytest.approx(sum(explained) / len(explained))


def test_gain_entries_report_the_rule_and_the_numbers_it_uses():
    r = gain_results(0.1)
    no_gain = verdict(r, "training_average_no_gain")
    assert no_gain["bound"] == {
        "single": S_ERR,
        "ensemble": E_ERR,
        "ensemble_gain": S_ERR - E_ERR,
        "half_gain_error": HALF,
        "rule": "err > err(single) − ½·(err(single) − err(ensemble))",
    }
    assert no_gain["measured"] == 0.1 and no_gain["per_model"] == [0.1] and no_gain["raw"] == 0.1
    matches = verdict(r, "ntk_average_matches_ensemble")
    assert matches["bound"]["rule"] == "err ≤ err(single) − ½·(err(single) − err(ensemble))"
    assert matches["method_gain_fraction"] == pytest.approx((S_ERR - 0.1) / (S_ERR - E_ERR))
    assert "raw" not in matches  # a baseline's stages have no raw error of their own


def test_a_baseline_family_is_checked_without_the_other():
    r = gain_results(E_ERR)
    del r["random_features"]
    names = [b["name"] for b in bounds.check(r, cfg())]
    assert "ntk_average_matches_ensemble" in names and "ntk_kd_falls_short" in names
    assert not any(n.startswith("random_features") for n in names)


def exact_gain_ensemble(single_err: float, gain: float) -> float:
    """An ensemble error e with single_err − e == gain exactly in floating point."""
    e = single_err - gain
    for _ in range(8):
        if single_err - e == gain:
            return e
        e = float(np.nextafter(e, math.inf if single_err - e > gain else -math.inf))
    raise AssertionError("no exact ensemble error near the gain")


def test_the_noise_floor_is_two_standard_errors_inclusive():
    """Gain ≤ 2·SE, SE = √(2·err(1 − err)/n) of the single model's error: not judged; just above: judged."""
    n = 2000
    c = SimConfig().with_overrides({"data.mu": MU, "data.n_test": n})
    two_se = 2 * math.sqrt(S_ERR * (1 - S_ERR) / n) * math.sqrt(2)
    at = exact_gain_ensemble(S_ERR, two_se)
    for ens, judged in ((at, False), (below(at), True)):  # a gain of exactly 2·SE, and just above
        r = {"single": single(S_ERR), "ensemble": part(ens), "training_average": part(S_ERR)}
        (e,) = [b for b in bounds.check(r, c) if b["name"] == "training_average_no_gain"]
        assert (e["passed"] is not None) is judged
        if not judged:
            assert e["note"] == (
                f"the ensemble gain {two_se:.4f} is within noise (2·SE = {two_se:.4f}); nothing to compare"
            )
