"""The fixed-feature baselines as stages (spec §5, claim 11): the paper's comparison run again with
feature learning switched off, for random features (``random_features``) and the NTK (``ntk``).

Each family trains S single models, their ensemble, models trained as the average of K and KD
students from the ensemble, with the learners of :mod:`multiview.baselines`. Their parameters
(readout, Δ′) start at zero in standardized coordinates, where each problem is convex; they train
for ``protocol.baseline_steps`` with normalized steps of ``protocol.baseline_delta``
(:func:`baseline_train_config`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from multiview import ensemble
from multiview.baselines import LinearizedCNN, RandomFeatures, random_feature_map, tangent_scale
from multiview.config import ProtocolConfig, SimConfig, TrainConfig
from multiview.driver import implements
from multiview.evaluate import error_rates
from multiview.losses import LabelObjective
from multiview.model import TwoLayerCNN, init_weights
from multiview.run import Run, errors_json, fit, kd_objective, kd_threshold, logits_on, training_json
from multiview.seeding import derive_seed
from multiview.stages import SYNTHETIC
from multiview.train import chunk_size, evaluation_chunk

Part = tuple[dict[str, Any], dict[str, Any]]
MakeLearners = Callable[[str, int], tuple[Any, Any, Any]]


def baseline_train_config(train: TrainConfig, protocol: ProtocolConfig) -> TrainConfig:
    """How the fixed-feature models train. Their parameters (readout, Δ′) start at zero, so the
    "relative" rule has no scale to follow: they take normalized steps of δ =
    ``protocol.baseline_delta`` (0 = ``train.delta``) in their standardized coordinates, where
    each problem is convex. A "constant" rule is kept as configured."""
    if train.step == "constant":
        return train
    return dataclasses.replace(train, step="normalized", delta=protocol.baseline_delta or train.delta)


def fixed_feature_comparison(run: Run, name: str, make: MakeLearners) -> Part:
    """single / ensemble / training the average / KD for one fixed-feature learner family.

    ``make(stream, count)`` returns (learner, train inputs, test inputs) for ``count`` fresh
    replicas whose random parts come from ``stream``.
    """
    cfg, p = run.cfg, run.cfg.protocol
    S = cfg.n_seeds
    steps = p.baseline_steps or cfg.train.max_steps
    tcfg = baseline_train_config(cfg.train, p)
    y = run.train.y
    out: dict[str, Any] = {}

    learner, Xtr, Xte = make(f"{name}", S)
    res = fit(run, f"{name}:single", learner, Xtr, LabelObjective(y), S, steps, tcfg=tcfg)
    test_single = logits_on(learner, Xte, cfg.train)
    train_single = logits_on(learner, Xtr, cfg.train)
    out["single"] = {
        "test_error": errors_json(error_rates(test_single, run.test)),
        **training_json(res, steps, tcfg.loss_threshold),
    }

    G = ensemble.combine(test_single, p.ensemble_combine)[None]
    out["ensemble"] = {"test_error": errors_json(error_rates(G, run.test)), "K": S}

    K = p.training_average_K or S
    n_models = max(1, S // K)
    learner, Xtr_avg, Xte_avg = make(f"{name}", n_models * K)
    objective = LabelObjective(y, group_size=K)
    res = fit(run, f"{name}:training_average", learner, Xtr_avg, objective, n_models, steps, tcfg=tcfg)
    avg = objective.combine(logits_on(learner, Xte_avg, cfg.train))
    out["training_average"] = {
        "test_error": errors_json(error_rates(avg, run.test)),
        "K": K,
        **training_json(res, steps, tcfg.loss_threshold),
    }

    teacher = ensemble.combine(train_single, p.ensemble_combine)[None] * p.kd_teacher_scale
    learner, Xtr_s, Xte_s = make(f"{name}_student", S)
    objective = kd_objective(p, cfg.data.k, y, teacher)
    kd_steps = p.kd_steps or steps
    res = fit(run, f"{name}:kd", learner, Xtr_s, objective, S, kd_steps, kd_threshold(cfg), tcfg=tcfg)
    kd = logits_on(learner, Xte_s, cfg.train)
    out["kd"] = {
        "test_error": errors_json(error_rates(kd, run.test)),
        **training_json(res, kd_steps, kd_threshold(cfg)),
    }
    return out, {"single_test_logits": test_single, "kd_test_logits": kd}


def baseline_sigma(cfg: SimConfig) -> float:
    """σ_0 of the fixed-feature networks: ``protocol.rf_sigma_0``, or the model's σ_0."""
    return cfg.protocol.rf_sigma_0 or cfg.model.sigma_0


@implements(SYNTHETIC, "random_features")
def stage_random_features(run: Run) -> Part:
    cfg, m = run.cfg, run.cfg.model
    width = cfg.protocol.rf_width
    sigma = baseline_sigma(cfg)
    D = run.dist.weight_dim(cfg.data.n_train)
    features: dict[tuple[str, int], tuple[Tensor, Tensor]] = {}

    def make(stream: str, count: int) -> tuple[Any, Any, Any]:
        if (stream, count) not in features:  # the training average reuses the singles' features
            W = init_weights(cfg.seed, stream, list(range(count)), 1, width, D, sigma, run.device, run.dtype)
            key = derive_seed(cfg.seed, stream)
            chunk = evaluation_chunk(TwoLayerCNN(W, m.q, m.varrho), run.test_inputs, cfg.train)
            phi_tr = random_feature_map(run.train_inputs, W[:, 0], m.q, m.varrho, sigma, key, chunk)
            phi_te = random_feature_map(run.test_inputs, W[:, 0], m.q, m.varrho, sigma, key, chunk)
            scale = phi_tr.pow(2).mean(0, keepdim=True).sqrt().clamp_min(1e-30)
            features[(stream, count)] = (phi_tr / scale, phi_te / scale)
        readout = torch.zeros(count, cfg.data.k, width, device=run.device, dtype=run.dtype)
        return (RandomFeatures(readout), *features[(stream, count)])

    part, tensors = fixed_feature_comparison(run, "rf", make)
    part.update({"width": width, "sigma_0": sigma})
    return part, tensors


@implements(SYNTHETIC, "ntk")
def stage_ntk(run: Run) -> Part:
    cfg, m = run.cfg, run.cfg.model
    sigma = baseline_sigma(cfg)
    D = run.dist.weight_dim(cfg.data.n_train)
    X = run.train_inputs

    def make(stream: str, count: int) -> tuple[Any, Any, Any]:
        W0 = init_weights(
            cfg.seed, stream, list(range(count)), cfg.data.k, m.m, D, sigma, run.device, run.dtype
        )
        key = derive_seed(cfg.seed, stream)
        cnn = TwoLayerCNN(W0, m.q, m.varrho)
        probe_seeds = [derive_seed(cfg.seed, f"{stream}-tangent-probe", i) for i in range(count)]
        chunk = evaluation_chunk(cnn, X, cfg.train)
        scale = tangent_scale(X, W0, m.q, m.varrho, sigma, key, probe_seeds, chunk=chunk)
        learner = LinearizedCNN(W0, m.q, m.varrho, sigma, key, scale)
        if chunk_size(cnn, X, cfg.train) >= len(X):  # full-batch steps pass this object
            learner.fix_inputs(X)
        return learner, X, run.test_inputs

    part, tensors = fixed_feature_comparison(run, "ntk", make)
    part.update({"sigma_0": sigma})
    return part, tensors
