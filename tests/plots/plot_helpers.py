"""Results shaped like the protocols' output, for the figure tests (no training needed)."""

from __future__ import annotations

import json

import numpy as np

from multiview import bounds
from multiview.config import get_preset

S, K_CLASSES, T = 4, 3, 6


def _errors(rng: np.random.Generator, n: int, scale: float) -> dict[str, list[float]]:
    single = (scale * rng.uniform(0.5, 1.5, n)).tolist()
    return {"all": [0.1 * e for e in single], "multi_view": [0.0] * n, "single_view": single}


def synthetic_results(seed: int = 0) -> dict:
    """A complete results dict (S = 4 seeds, k = 3 classes) shaped like ``run_protocol``'s."""
    rng = np.random.default_rng(seed)
    cfg = get_preset("smoke").with_overrides({"data.k": K_CLASSES, "n_seeds": S, "data.mu": 0.2})
    learned = np.zeros((S, K_CLASSES, 2), dtype=bool)
    win = rng.integers(0, 2, (S, K_CLASSES))
    learned[np.arange(S)[:, None], np.arange(K_CLASSES)[None, :], win] = True
    learned[0, 0] = True  # one (seed, class) pair with both views
    L0 = rng.uniform(0.001, 0.01, (S, K_CLASSES, 2))
    L0[1, 1, 0] = -0.002  # a negative Λ(0), left out of the ratio plot
    steps = np.arange(T) * 10
    growth = np.exp(np.linspace(0, 6, T))[:, None, None, None]
    Lam = L0[None] * np.where(learned[None], growth, 1.0)
    same = (learned[:, None] == learned[None, :]).all(-1).mean(-1)
    flat = learned.reshape(S, -1).astype(float)
    inter = flat @ flat.T
    jac = inter / (flat.sum(1)[:, None] + flat.sum(1)[None, :] - inter)
    union = learned.any(0, keepdims=True)
    kd_learned = np.ones((S, K_CLASSES, 2), dtype=bool)
    kd_learned[2, 1, 0] = False
    self_learned = learned.copy()
    self_learned[1] = True

    def view_summary(le: np.ndarray) -> dict:
        n = le.sum(-1)
        return {
            "learned": le.tolist(),
            "exactly_one_fraction": float((n == 1).mean()),
            "both_fraction": float((n == 2).mean()),
            "none_fraction": float((n == 0).mean()),
        }

    mem = {
        g: {
            "own_noise": (base * rng.uniform(0.8, 1.2, S)).tolist(),
            "fresh_noise": [0.01] * S,
            "count": [c] * S,
        }
        for g, base, c in (
            ("multi_view", 0.05, 80),
            ("single_dominant_learned", 0.3, 15),
            ("single_dominant_unlearned", 2.0, 5),
        )
    }
    Kc = list(range(1, S + 1))
    single = {
        "test_error": _errors(rng, S, 0.5),
        "train_accuracy": [1.0] * S,
        "explanation": {"errors_explained": [1.0] * S},
        "memorization": mem,
        "history": {
            "step": steps.tolist(),
            "loss": np.ones((T, S)).tolist(),
            "train_accuracy": np.ones((T, S)).tolist(),
            "flow_time": np.repeat(steps[:, None] * 0.5, S, 1).tolist(),
            "Lambda": Lam.tolist(),
            "Phi": Lam.tolist(),
        },
        "views": {
            **view_summary(learned),
            "lottery_agreement": 0.75,
            "lottery": {
                "predicted_winner": L0.argmax(-1).tolist(),
                "by_initial_ratio": {
                    "bin_low": [1.0, 1.5, 2.0],
                    "bin_high": [1.5, 2.0, None],
                    "agreement": [0.5, None, 1.0],
                    "count": [4, 0, 6],
                },
            },
            "Lambda_init": L0.tolist(),
            "Lambda_final": Lam[-1].tolist(),
            "threshold": 0.1,
            "overlap": {
                "same_views": same.tolist(),
                "jaccard": jac.tolist(),
                "mean_same_views": float(same[~np.eye(S, dtype=bool)].mean()),
                "mean_jaccard": float(jac[~np.eye(S, dtype=bool)].mean()),
            },
        },
    }
    curve = {
        "K": Kc,
        "all": [0.02 / k for k in Kc],
        "multi_view": [0.0] * S,
        "single_view": [0.1 / k for k in Kc],
        "covered": [1 - 2.0 ** (1 - k) for k in Kc],
        "predicted_single_view": [2.0**-k for k in Kc],
    }
    results = {
        "config": cfg.to_dict(),
        "single": single,
        "views": single["views"],
        "ensemble": {
            "test_error": _errors(rng, 1, 0.001),
            "K": S,
            "curve": curve,
            "views": {**view_summary(union), "covered_fraction": 1.0},
        },
        "training_average": {"test_error": _errors(rng, 1, 0.4)},
        "kd": {
            "test_error": _errors(rng, S, 0.01),
            "views": {**view_summary(kd_learned), "gained_fraction": 0.9, "covers_teacher_fraction": 0.9},
            "history": student_history(rng, final_both=0.9, final_error=0.005),
        },
        "self_kd": {
            "test_error": _errors(rng, S, 0.2),
            "views": {
                **view_summary(self_learned),
                "gained_fraction": 0.25,
                "covers_teacher_fraction": 1.0,
                "own_lottery_winner": rng.integers(0, 2, (S, K_CLASSES)).tolist(),
            },
            "history": student_history(rng, final_both=0.5, final_error=0.02),
        },
        "ensemble_of_kd": {
            "test_error": _errors(rng, 1, 0.0),
            "K": S,
            "curve": {**curve, "single_view": [0.001] * S},
        },
        "random_features": {
            m: {"test_error": _errors(rng, S, 0.6)} for m in ("single", "ensemble", "training_average", "kd")
        },
    }
    results["bounds"] = json.loads(
        json.dumps(bounds.check(results, cfg), allow_nan=True).replace("NaN", "null")
    )
    return results


def student_history(rng: np.random.Generator, final_both: float, final_error: float) -> dict:
    """A distilled student stage's ``history``: T records of S students over K_CLASSES classes."""
    flow = np.cumsum(rng.uniform(1, 10, (T, S)), 0) - 1  # starts near 0, grows
    flow[0] = 0.0
    ramp = np.linspace(0, 1, T)[:, None]
    return {
        "step": list(range(0, 100 * T, 100)),
        "flow_time": flow.tolist(),
        "both_fraction": (final_both * ramp * np.ones((T, S))).tolist(),
        "losing_view": {
            "view": rng.integers(0, 2, (S, K_CLASSES)).tolist(),
            "progress": (ramp[..., None] * rng.uniform(0.5, 1.0, (1, S, K_CLASSES))).tolist(),
        },
        "test_error": np.stack([(0.1 - (0.1 - final_error) * ramp) * np.ones((T, S))] * 3, -1).tolist(),
    }


def only(results: dict, *stages: str) -> dict:
    keep = {"config", "bounds", *stages}
    return {k: v for k, v in results.items() if k in keep}


def cifar_results() -> dict:
    """A CIFAR run's results (3 single models) shaped like ``multiview.cifar.protocol``'s."""
    acc = {"single": [0.90, 0.91, 0.905], "kd": [0.92, 0.921, 0.919], "self_kd": [0.912, 0.915, 0.91]}
    curve = {"K": [1, 2, 3], "accuracy": [0.905, 0.92, 0.93], "all": [0.095, 0.08, 0.07]}
    out = {"mode": "cifar", "config": {"data": {"dataset": "cifar10"}}}
    for key, a in acc.items():
        out[key] = {"test_accuracy": a, "test_error": {"all": [1 - x for x in a]}}
    out["training_average"] = {"test_accuracy": [0.908], "test_error": {"all": [0.092]}}
    out["ensemble"] = {"test_accuracy": [0.93], "test_error": {"all": [0.07]}, "K": 3, "curve": curve}
    out["ensemble_of_kd"] = {"test_accuracy": [0.935], "test_error": {"all": [0.065]}, "K": 3, "curve": curve}
    out["self_kd"]["ensemble"] = {"test_accuracy": [0.93], "curve": curve}
    out["overlap"] = {
        "n_test": 1000,
        "single": {
            "pairwise_jaccard": [[1.0, 0.4, 0.5], [0.4, 1.0, 0.45], [0.5, 0.45, 1.0]],
            "mean_jaccard": 0.45,
            "independent_jaccard": 0.05,
            "missed_by_count": [850, 60, 40, 50],
        },
        "ensemble": {"fixed": 70, "broken": 5},
    }
    out["channel_split"] = {
        "n": [1, 2, 4, 8],
        "channels": 256,
        "cut_after_stage": 2,
        "original": {"test_accuracy": [0.9, 0.91], "ensemble_accuracy": 0.92},
        "single": {str(n): {"test_accuracy": [0.9 - 0.01 * n, 0.9 - 0.01 * n]} for n in (1, 2, 4, 8)},
        "ensemble": {str(n): {"test_accuracy": 0.91 - 0.01 * n} for n in (1, 2, 4, 8)},
    }
    return out
