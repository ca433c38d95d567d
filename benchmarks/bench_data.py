"""Data generation: the vectorised sampler against a per-example reference loop."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from multiview.config import DataConfig, get_preset
from multiview.data import MultiViewDistribution


def reference_sample(cfg: DataConfig, features: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """The same distribution, one example (and one feature) at a time: the plain-Python baseline."""
    k, P, Cp, d = cfg.k, cfg.P, cfg.C_p, cfg.d
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
                X[i, p] += rng.normal(0, cfg.sigma_p, d)
        for p in range(P):
            for f in range(2 * k):
                X[i, p] += rng.random() * cfg.gamma * features[f]
    return X


def data_generation(n_vectorised: int = 20000, n_loop: int = 200) -> dict[str, Any]:
    cfg = get_preset("default").data
    cfg_dense = DataConfig(**{**cfg.__dict__, "noise_model": "gaussian"})
    out: dict[str, Any] = {}
    dist = MultiViewDistribution(cfg_dense, 0)
    t = time.perf_counter()
    dist.sample(n_vectorised, "bench")
    t_vec = time.perf_counter() - t
    t = time.perf_counter()
    reference_sample(cfg_dense, dist.features.numpy(), n_loop, np.random.default_rng(0))
    t_loop = time.perf_counter() - t
    rate_vec = n_vectorised / t_vec
    rate_loop = n_loop / t_loop
    out["gaussian"] = {
        "examples_per_second": rate_vec,
        "patches_per_second": rate_vec * cfg.P,
        "reference_examples_per_second": rate_loop,
        "speedup": rate_vec / rate_loop,
    }
    dist_o = MultiViewDistribution(DataConfig(**{**cfg.__dict__, "noise_model": "orthogonal"}), 0)
    t = time.perf_counter()
    dist_o.sample(n_vectorised, "bench")
    t_o = time.perf_counter() - t
    out["orthogonal"] = {
        "examples_per_second": n_vectorised / t_o,
        "patches_per_second": n_vectorised * cfg.P / t_o,
    }
    out["target"] = 100.0
    out["met"] = out["gaussian"]["speedup"] >= 100.0 and not math.isnan(out["gaussian"]["speedup"])
    return out
