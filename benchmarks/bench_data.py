"""Data generation: the vectorised sampler against a per-example reference loop."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from multiview.config import DataConfig, get_preset
from multiview.data import MultiViewDistribution


def reference_sample(
    cfg: DataConfig, features: np.ndarray, n: int, rng: np.random.Generator, noise: bool = True
) -> np.ndarray:
    """The same distribution, one example (and one feature) at a time: the plain-Python baseline.
    ``noise = False`` skips the Gaussian vectors (the orthogonal model draws none)."""
    k, P, Cp, d = cfg.k, cfg.P, cfg.C_p, features.shape[1]
    X = np.zeros((n, P, d))
    for i in range(n):
        y = rng.integers(k)
        single = rng.random() < cfg.mu
        dom = rng.integers(2) if single else -1
        feats = [2 * y, 2 * y + 1]
        for f in range(2 * k):
            if f // 2 != y and rng.random() < cfg.s / k and len(feats) < P // Cp:
                feats.append(f)
        patches = rng.permutation(P)
        for j, f in enumerate(feats):
            if f // 2 == y:
                if not single:
                    lo, hi = cfg.label_view_total
                elif f % 2 == dom:
                    lo, hi = cfg.dominant_view_total
                else:
                    lo, hi = (cfg.rho * v for v in cfg.weak_view_total)
            else:
                lo, hi = cfg.cross_total_single if single else cfg.cross_total_multi
                if single:
                    lo, hi = cfg.Gamma * lo, cfg.Gamma * hi
            total = lo + rng.random() * (hi - lo)
            share = rng.dirichlet(np.ones(Cp))
            for c in range(Cp):
                p = patches[j * Cp + c]
                X[i, p] += total * share[c] * features[f]
                if noise:
                    X[i, p] += rng.normal(0, cfg.sigma_p, d)
        for p in range(P):
            for f in range(2 * k):
                X[i, p] += rng.random() * cfg.gamma * features[f]
    return X


def _rate(fn, n: int, repeats: int = 3) -> float:
    """Examples per second: the best of ``repeats`` timed calls."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def data_generation(n_vectorised: int = 20000, n_loop: int = 200) -> dict[str, Any]:
    """Examples per second of the vectorised sampler against the per-example loop, for both noise
    models. Under the Gaussian model both sides spend their time drawing the n·P·d noise numbers,
    so the ratio measures little beyond that; the orthogonal model shows the vectorisation."""
    base = get_preset("default").data
    out: dict[str, Any] = {}
    for model in ("gaussian", "orthogonal"):
        cfg = DataConfig(**{**base.__dict__, "noise_model": model})
        dist = MultiViewDistribution(cfg, 0)
        rate_vec = _rate(lambda: dist.sample(n_vectorised, "bench"), n_vectorised)  # noqa: B023
        # The orthogonal model keeps coefficients on the 2k features, not d-dimensional patches.
        feats = dist.features.numpy() if model == "gaussian" else np.eye(2 * cfg.k)
        rate_loop = _rate(
            lambda: reference_sample(cfg, feats, n_loop, np.random.default_rng(0), noise=model == "gaussian"),  # noqa: B023
            n_loop,
        )
        out[model] = {
            "examples_per_second": rate_vec,
            "patches_per_second": rate_vec * cfg.P,
            "reference_examples_per_second": rate_loop,
            "speedup": rate_vec / rate_loop,
        }
    out["target"] = 100.0
    out["met"] = bool(out["orthogonal"]["speedup"] >= 100.0 and not math.isnan(out["orthogonal"]["speedup"]))
    return out


def sampler_vs_randn(n: int = 2000) -> dict[str, Any]:
    """The Gaussian noise model's sampler against its floor: drawing the n·P·d noise numbers.

    The sampler builds n examples of the ``default`` distribution with explicit patches; almost
    all its work is the N(0, σ²) noise, so it is timed against ``torch.randn`` of the same count
    (float64, the sampler's precision) in the same process. Target: within 1.3× of that floor.
    """
    import torch

    cfg = DataConfig(**{**get_preset("default").data.__dict__, "noise_model": "gaussian"})
    dist = MultiViewDistribution(cfg, 0)
    count = n * cfg.P * cfg.d
    gen = torch.Generator().manual_seed(0)
    t_sample = 1.0 / _rate(lambda: dist.sample(n, "bench"), 1)
    t_randn = 1.0 / _rate(lambda: torch.randn(count, generator=gen, dtype=torch.float64), 1)
    ratio = t_sample / t_randn
    return {
        "examples": n,
        "numbers": count,
        "sampler_seconds": t_sample,
        "randn_seconds": t_randn,
        "ratio": ratio,
        "target": 1.3,
        "met": ratio <= 1.3,
    }
