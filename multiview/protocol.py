"""The paper's protocol, stage by stage (spec §5, §7): who trains what on which data.

Stages (``ProtocolConfig.stages``), each a function of the run's shared state:

* ``single``: S models from independent seeds on the same data (Theorem 1);
* ``ensemble``: the average of their outputs, and its error against ensemble size (Theorem 2);
* ``training_average``: K sub-networks trained jointly on the loss of their mean logits;
* ``kd``: fresh students distilled from the ensemble of the single models (Theorem 3);
* ``self_kd``: one fresh student per single model, distilled from it (Theorem 4);
* ``ensemble_of_kd``: the ensemble of the KD students;
* ``random_features`` and ``ntk``: the same single / ensemble / training-average / KD comparison
  with the feature-learning switched off (spec §5, claim 11).

Every stage writes its JSON part and its tensors under ``<out>/stages/<name>.pt`` as soon as it
finishes; a resumed run loads finished stages instead of recomputing them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from multiview import bounds, ensemble, precision, results, stages
from multiview.baselines import LinearizedCNN, RandomFeatures, random_feature_map, tangent_scale
from multiview.config import STAGES, SimConfig, TrainConfig
from multiview.data import Batch, MultiViewDistribution
from multiview.evaluate import batched_logits, error_rates, explain_single_view
from multiview.losses import LabelObjective, PracticalKDObjective, TheoryKDObjective
from multiview.model import TwoLayerCNN, init_weights
from multiview.probes import (
    exactly_one,
    lam,
    learned_views,
    lottery,
    lottery_agreement,
    mean_offdiagonal,
    memorization,
    pairwise_overlap,
    phi,
    view_correlations,
    view_probe,
)
from multiview.results import SCHEMA_VERSION, atomic_write_text, load_tensors, save_tensors, write_json
from multiview.seeding import derive_seed
from multiview.train import TrainResult, chunk_size, evaluation_chunk, train

REQUIRES = {
    "single": (),
    "ensemble": ("single",),
    "training_average": (),
    "kd": ("single",),
    "self_kd": ("single",),
    "ensemble_of_kd": ("kd",),
    "random_features": (),
    "ntk": (),
}


class Reporter:
    """Receives progress: a stage starts, training steps advance, a stage ends. Silent by default."""

    def stage_started(self, name: str, total_steps: int) -> None: ...

    def step(self, name: str, step: int, total: int, active: int, loss: float) -> None: ...

    def stage_finished(self, name: str, seconds: float, cached: bool) -> None: ...


@dataclass
class Run:
    """Shared state of one protocol run: config, data, device, and what stages produced."""

    cfg: SimConfig
    device: torch.device
    dtype: torch.dtype
    dist: MultiViewDistribution
    train: Batch
    test: Batch
    reporter: Reporter
    results: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, dict[str, Any]] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)

    @property
    def train_inputs(self):
        return self.dist.inputs(self.train, seen=True)

    @property
    def test_inputs(self):
        return self.dist.inputs(self.test, seen=False, fresh_key=derive_seed(self.cfg.seed, "test-noise"))


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def resolve_stages(requested: list[str] | tuple[str, ...]) -> list[str]:
    """The requested stages plus what they need, in protocol order."""
    return stages.resolve_stages(requested, REQUIRES, STAGES)


def run_protocol(
    cfg: SimConfig,
    device: str | torch.device = "cpu",
    out_dir: str | Path | None = None,
    resume: bool = False,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Run the protocol's stages for ``cfg`` and return the results dict (``results.json``).

    With ``out_dir``, writes ``config.toml``, ``results.json`` (after every stage) and one
    checkpoint per stage; with ``resume``, stages whose checkpoint matches the config's hash are
    loaded instead of recomputed.
    """
    cfg.validate()
    device = torch.device(device)
    dtype = torch.float64 if cfg.train.dtype == "float64" else torch.float32
    reporter = reporter or Reporter()
    precision.configure(cfg.train, device)
    out = Path(out_dir) if out_dir is not None else None
    t0 = time.perf_counter()
    dist = MultiViewDistribution(cfg.data, cfg.seed)
    train_batch = dist.sample(cfg.data.n_train, "train", device, dtype)
    test_batch = dist.sample(cfg.data.n_test, "test", device, dtype)
    run = Run(cfg, device, dtype, dist, train_batch, test_batch, reporter)
    run.timing["data"] = time.perf_counter() - t0
    run.results = {
        "schema": SCHEMA_VERSION,
        "config": cfg.to_dict(),
        "config_hash": cfg.config_hash(),
        "environment": environment(device, dtype),
        "data": data_summary(run),
    }
    if out is not None:
        atomic_write_text(out / "config.toml", cfg.to_toml())
    for name in resolve_stages(cfg.protocol.stages):
        ckpt = out / "stages" / f"{name}.pt" if out is not None else None
        key = stage_hash(cfg, name)
        if resume and ckpt is not None and ckpt.exists():
            saved = load_tensors(ckpt)
            if saved.get("config_hash") == key:
                run.results[name] = saved["json"]
                run.tensors[name] = saved["tensors"]
                run.timing[name] = saved["seconds"]
                reporter.stage_finished(name, saved["seconds"], cached=True)
                continue
        t = time.perf_counter()
        part, tensors = STAGE_FUNCTIONS[name](run)
        seconds = time.perf_counter() - t
        run.results[name] = part
        run.tensors[name] = tensors
        run.timing[name] = seconds
        reporter.stage_finished(name, seconds, cached=False)
        if ckpt is not None:
            save_tensors(ckpt, {"config_hash": key, "json": part, "tensors": tensors, "seconds": seconds})
            _finish(run, out, t0, partial=True)
    return _finish(run, out, t0, partial=False)


_KD = ("kd_objective", "kd_tau", "kd_eta_ratio", "kd_t", "kd_temperature", "kd_teacher_scale", "kd_steps")
# The [protocol] settings each stage's result depends on (with everything outside [protocol]).
STAGE_PROTOCOL_KEYS: dict[str, tuple[str, ...]] = {
    "single": (),
    "ensemble": ("ensemble_combine",),
    "training_average": ("training_average_K",),
    "kd": ("ensemble_combine", *_KD),
    "self_kd": _KD,
    "ensemble_of_kd": ("ensemble_combine", *_KD),
    "random_features": (
        "ensemble_combine",
        "training_average_K",
        *_KD,
        "rf_sigma_0",
        "rf_width",
        "baseline_steps",
        "baseline_delta",
    ),
    "ntk": ("ensemble_combine", "training_average_K", *_KD, "rf_sigma_0", "baseline_steps", "baseline_delta"),
}


def stage_hash(cfg: SimConfig, name: str) -> str:
    """The hash a stage's checkpoint must match to be reused: the config outside [protocol] and
    the [protocol] settings that stage depends on, so a resumed run with, say, other KD settings
    reuses the single models."""
    protocol = {key: getattr(cfg.protocol, key) for key in STAGE_PROTOCOL_KEYS[name]}
    text = json.dumps(
        {"config": cfg.config_hash(exclude=("protocol",)), "protocol": protocol}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _finish(run: Run, out: Path | None, t0: float, partial: bool) -> dict[str, Any]:
    if "single" in run.results:
        run.results["views"] = run.results["single"]["views"]
    run.results["bounds"] = bounds.check(run.results, run.cfg)
    run.results["timing"] = {**run.timing, "total": time.perf_counter() - t0}
    run.results["complete"] = not partial
    if out is not None:
        write_json(out / "results.json", run.results)
    return run.results


def environment(device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    return {
        "device": str(device),
        "dtype": str(dtype).replace("torch.", ""),
        **results.host_environment(device),
    }


def data_summary(run: Run) -> dict[str, Any]:
    c = run.cfg.data
    return {
        "n_train": c.n_train,
        "n_test": c.n_test,
        "train_single_view": int(run.train.single.sum()),
        "test_single_view": int(run.test.single.sum()),
        "test_single_view_fraction": float(run.test.single.float().mean()),
        "capped_fraction_train": float(run.train.capped.float().mean()),
        "capped_fraction_test": float(run.test.capped.float().mean()),
        "noise_norm_feature_patch": c.sigma_p * c.d**0.5,
        "noise_norm_nonfeature_patch": c.sigma_nonfeature_resolved * c.d**0.5,
        "sigma_nonfeature": c.sigma_nonfeature_resolved,
        "weight_dim": run.dist.weight_dim(c.n_train),
    }


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def _progress(run: Run, name: str):
    def cb(step: int, total: int, active: int, loss: float) -> None:
        run.reporter.step(name, step, total, active, loss)

    return cb


def _new_cnn(run: Run, stream: str, count: int, sigma: float | None = None) -> TwoLayerCNN:
    c, m = run.cfg, run.cfg.model
    sigma = m.sigma_0 if sigma is None else sigma
    D = run.dist.weight_dim(c.data.n_train)
    W = init_weights(c.seed, stream, list(range(count)), c.data.k, m.m, D, sigma, run.device, run.dtype)
    return TwoLayerCNN(W, m.q, m.varrho, sigma, derive_seed(c.seed, stream))


def _train(
    run: Run,
    name: str,
    learner,
    inputs,
    objective,
    n_runs: int,
    steps: int,
    threshold: float | None = None,
    probe=None,
    tcfg: TrainConfig | None = None,
) -> TrainResult:
    tcfg = run.cfg.train if tcfg is None else tcfg
    run.reporter.stage_started(name, steps)
    return train(
        learner,
        inputs,
        objective,
        n_runs,
        tcfg,
        max_steps=steps,
        loss_threshold=threshold,
        probe=probe,
        progress=_progress(run, name),
    )


def _errors_json(errs: dict[str, Tensor]) -> dict[str, list[float]]:
    return {k: [float(v) for v in errs[k]] for k in ("all", "multi_view", "single_view")}


def _training_json(res: TrainResult) -> dict[str, Any]:
    return {
        "train_accuracy": res.final_train_accuracy.tolist(),
        "final_loss": res.final_loss.tolist(),
        "steps": res.steps.tolist(),
        "converged": res.converged.tolist(),
        "flow_time": res.flow_time.tolist(),
        "train_seconds": res.seconds,
    }


def _chunk(run: Run, learner, inputs) -> int:
    return chunk_size(learner, inputs, run.cfg.train)


def _eval_chunk(run: Run, learner, inputs) -> int:
    return evaluation_chunk(learner, inputs, run.cfg.train)


def _learned(run: Run, weights: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(Λ, Φ, learned) for weights (R, k, m, D)."""
    corr = view_correlations(weights, run.dist)
    L = lam(corr)
    return L, phi(corr), learned_views(L, run.cfg.model.varrho, run.cfg.probes.learned_threshold)


def _view_summary(learned: Tensor) -> dict[str, Any]:
    """Counts over (model, class) pairs of how many views were learned."""
    n = learned.sum(-1)
    return {
        "learned": learned.tolist(),
        "exactly_one_fraction": float((n == 1).float().mean()),
        "both_fraction": float((n == 2).float().mean()),
        "none_fraction": float((n == 0).float().mean()),
    }


def _evaluate(run: Run, learner, logits_override: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    inputs = run.test_inputs
    logits = (
        batched_logits(learner, inputs, _eval_chunk(run, learner, inputs))
        if logits_override is None
        else logits_override
    )
    return logits, error_rates(logits, run.test)


# --------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------


def stage_single(run: Run) -> tuple[dict[str, Any], dict[str, Any]]:
    cfg = run.cfg
    S = cfg.n_seeds
    net = _new_cnn(run, "model", S)
    L0, P0, _ = _learned(run, net.weights)
    Xtr = run.train_inputs
    res = _train(
        run,
        "single",
        net,
        Xtr,
        LabelObjective(run.train.y),
        S,
        cfg.train.max_steps,
        probe=view_probe(run.dist),
    )
    LT, PT, learned = _learned(run, net.weights)
    test_logits, errs = _evaluate(run, net)
    train_logits = batched_logits(net, Xtr, _eval_chunk(run, net, Xtr))
    winner, in_M = lottery(L0, cfg.probes.margin(cfg.model.m))
    overlap = pairwise_overlap(learned)
    n_mem = cfg.probes.memorization_examples or cfg.data.n_train
    mem = memorization(net.weights, run.train.subset(slice(0, n_mem)), run.dist, learned, cfg.model.sigma_0)
    views = {
        **_view_summary(learned),
        "lottery_agreement": lottery_agreement(learned, winner, in_M)["agreement"],
        "lottery": {
            **lottery_agreement(learned, winner, in_M),
            "predicted_winner": winner.tolist(),
            "in_M": in_M.tolist(),
            "margin": cfg.probes.margin(cfg.model.m),
            "by_initial_ratio": lottery_by_ratio(L0, learned),
        },
        "Lambda_init": L0.tolist(),
        "Lambda_final": LT.tolist(),
        "Phi_init": P0.tolist(),
        "Phi_final": PT.tolist(),
        "threshold": cfg.probes.learned_threshold * cfg.model.varrho,
        "overlap": {
            "same_views": overlap["same_views"].tolist(),
            "jaccard": overlap["jaccard"].tolist(),
            "mean_same_views": mean_offdiagonal(overlap["same_views"]),
            "mean_jaccard": mean_offdiagonal(overlap["jaccard"]),
        },
    }
    part = {
        "test_error": _errors_json(errs),
        **_training_json(res),
        "explanation": explain_single_view(errs["correct"], learned, run.test),
        "memorization": mem,
        "views": views,
        "history": _history_json(res),
    }
    tensors = {
        "weights": net.weights,
        "test_logits": test_logits,
        "train_logits": train_logits,
        "learned": learned,
        "Lambda_init": L0,
    }
    return part, tensors


def lottery_by_ratio(
    L0: Tensor, learned: Tensor, edges: tuple[float, ...] = (1.0, 1.05, 1.1, 1.25, 1.5, 2.0, 4.0)
):
    """Agreement of the learned view with argmax Λ(0), binned by the initial ratio max/min of
    Λ_{i,1}(0), Λ_{i,2}(0) (classes with exactly one view learned and both Λ(0) > 0)."""
    hi = L0.max(-1).values
    lo = L0.min(-1).values
    one = exactly_one(learned) & (lo > 0)
    ratio = torch.where(lo > 0, hi / lo.clamp_min(1e-30), torch.full_like(hi, float("inf")))
    agree = learned.long().argmax(-1) == L0.argmax(-1)
    out = {"bin_low": [], "bin_high": [], "agreement": [], "count": []}
    bounds_ = list(edges) + [float("inf")]
    for a, b in zip(bounds_[:-1], bounds_[1:], strict=False):
        mask = one & (ratio >= a) & (ratio < b)
        out["bin_low"].append(a)
        out["bin_high"].append(b)
        out["count"].append(int(mask.sum()))
        out["agreement"].append(float(agree[mask].float().mean()) if mask.any() else float("nan"))
    return out


def _history_json(res: TrainResult) -> dict[str, Any]:
    h = res.history
    out = {
        "step": h["step"].tolist(),
        "loss": h["loss"].tolist(),
        "train_accuracy": h["train_accuracy"].tolist(),
    }
    out["flow_time"] = h["flow_time"].tolist()
    for key in ("Lambda", "Phi"):
        if key in h:
            out[key] = h[key].tolist()
    return out


def stage_ensemble(run: Run) -> tuple[dict[str, Any], dict[str, Any]]:
    single = run.tensors["single"]
    how = run.cfg.protocol.ensemble_combine
    logits = single["test_logits"]
    learned = single["learned"]
    G = ensemble.combine(logits, how)[None]
    errs = error_rates(G, run.test)
    union = learned.any(0, keepdim=True)
    part = {
        "test_error": _errors_json(errs),
        "K": int(logits.shape[0]),
        "combine": how,
        "curve": ensemble.ensemble_curve(logits, learned, run.test, how),
        "views": {
            **_view_summary(union),
            "covered_fraction": float(ensemble.coverage(learned).float().mean()),
        },
        "explanation": explain_single_view(errs["correct"], union, run.test),
    }
    return part, {"test_logits": G}


def stage_training_average(run: Run) -> tuple[dict[str, Any], dict[str, Any]]:
    cfg = run.cfg
    K = cfg.protocol.training_average_K or cfg.n_seeds
    G = max(1, cfg.n_seeds // K)
    net = _new_cnn(run, "training_average", G * K)
    objective = LabelObjective(run.train.y, group_size=K)
    res = _train(run, "training_average", net, run.train_inputs, objective, G, cfg.train.max_steps)
    sub_logits = batched_logits(net, run.test_inputs, _eval_chunk(run, net, run.test_inputs))
    logits = objective.combine(sub_logits)
    errs = error_rates(logits, run.test)
    _, _, learned = _learned(run, net.weights)
    union = learned.view(G, K, *learned.shape[1:]).any(1)
    part = {
        "test_error": _errors_json(errs),
        **_training_json(res),
        "K": K,
        "models": G,
        "views": {
            **_view_summary(union),
            "sub_networks": _view_summary(learned),
            "views_per_class_mean": float(union.sum(-1).float().mean()),
        },
        "explanation": explain_single_view(errs["correct"], union, run.test),
    }
    return part, {"weights": net.weights, "test_logits": logits}


def _kd_objective(run: Run, teacher: Tensor):
    p = run.cfg.protocol
    y = run.train.y
    if p.kd_objective == "theory":
        return TheoryKDObjective(y, teacher, p.tau(run.cfg.data.k), p.kd_eta_ratio)
    return PracticalKDObjective(y, teacher, p.kd_t, p.kd_temperature)


def _kd_threshold(run: Run) -> float:
    """Theory KD students stop like single models (their reported loss also measures how far they
    still fall below the teacher); practical-KD students train for their whole budget."""
    return run.cfg.train.loss_threshold if run.cfg.protocol.kd_objective == "theory" else 0.0


def _student_views(run: Run, student_learned: Tensor, L0: Tensor, teacher_learned: Tensor) -> dict[str, Any]:
    """What students learned relative to their own lottery and to their teachers.

    ``teacher_learned`` (S or 1, k, 2). ``gained_fraction``: over (student, class) pairs where the
    student's lottery picks one view and the teacher knows the other, how often the student
    learned that other view too.
    """
    winner, _ = lottery(L0, 0.0)
    other = 1 - winner
    teacher = teacher_learned.expand_as(student_learned)
    has_other = teacher.gather(-1, other[..., None]).squeeze(-1)
    learned_other = student_learned.gather(-1, other[..., None]).squeeze(-1)
    covers = (student_learned | ~teacher).all(-1)  # student ⊇ teacher
    return {
        **_view_summary(student_learned),
        "gained_fraction": float((learned_other & has_other).sum() / has_other.sum().clamp_min(1)),
        "gained_pairs": int(has_other.sum()),
        "covers_teacher_fraction": float(covers.float().mean()),
        "own_lottery_winner": winner.tolist(),
    }


def stage_kd(run: Run) -> tuple[dict[str, Any], dict[str, Any]]:
    cfg, p = run.cfg, run.cfg.protocol
    single = run.tensors["single"]
    teacher = ensemble.combine(single["train_logits"], p.ensemble_combine)[None] * p.kd_teacher_scale
    S = cfg.n_seeds
    net = _new_cnn(run, "kd_student", S)
    L0, _, _ = _learned(run, net.weights)
    steps = p.kd_steps or cfg.train.max_steps
    res = _train(
        run, "kd", net, run.train_inputs, _kd_objective(run, teacher), S, steps, threshold=_kd_threshold(run)
    )
    _, _, learned = _learned(run, net.weights)
    test_logits, errs = _evaluate(run, net)
    teacher_union = single["learned"].any(0, keepdim=True)
    part = {
        "test_error": _errors_json(errs),
        **_training_json(res),
        "objective": p.kd_objective,
        "tau": p.tau(cfg.data.k) if p.kd_objective == "theory" else None,
        "views": _student_views(run, learned, L0, teacher_union),
        "explanation": explain_single_view(errs["correct"], learned, run.test),
    }
    return part, {"weights": net.weights, "test_logits": test_logits, "learned": learned}


def stage_self_kd(run: Run) -> tuple[dict[str, Any], dict[str, Any]]:
    cfg, p = run.cfg, run.cfg.protocol
    single = run.tensors["single"]
    S = cfg.n_seeds
    net = _new_cnn(run, "self_kd_student", S)
    L0, _, _ = _learned(run, net.weights)
    steps = p.kd_steps or cfg.train.max_steps
    objective = _kd_objective(run, single["train_logits"])
    res = _train(run, "self_kd", net, run.train_inputs, objective, S, steps, _kd_threshold(run))
    _, _, learned = _learned(run, net.weights)
    test_logits, errs = _evaluate(run, net)
    views = _student_views(run, learned, L0, single["learned"])
    # Theorem 4: the student learns its own lottery winner ∪ its teacher's view.
    teacher_one = exactly_one(single["learned"])
    teacher_view = single["learned"].long().argmax(-1)
    own = lottery(L0, 0.0)[0]
    differ = teacher_one & (teacher_view != own)
    same = teacher_one & (teacher_view == own)
    both = learned.all(-1)
    views["both_when_lotteries_differ"] = float(both[differ].float().mean()) if differ.any() else float("nan")
    views["one_when_lotteries_agree"] = (
        float(exactly_one(learned)[same].float().mean()) if same.any() else float("nan")
    )
    part = {
        "test_error": _errors_json(errs),
        **_training_json(res),
        "objective": p.kd_objective,
        "views": views,
        "explanation": explain_single_view(errs["correct"], learned, run.test),
    }
    return part, {"weights": net.weights, "test_logits": test_logits, "learned": learned}


def stage_ensemble_of_kd(run: Run) -> tuple[dict[str, Any], dict[str, Any]]:
    kd = run.tensors["kd"]
    how = run.cfg.protocol.ensemble_combine
    G = ensemble.combine(kd["test_logits"], how)[None]
    errs = error_rates(G, run.test)
    union = kd["learned"].any(0, keepdim=True)
    part = {
        "test_error": _errors_json(errs),
        "K": int(kd["test_logits"].shape[0]),
        "combine": how,
        "curve": ensemble.ensemble_curve(kd["test_logits"], kd["learned"], run.test, how),
        "views": _view_summary(union),
    }
    return part, {"test_logits": G}


# --- fixed-feature baselines -----------------------------------------------------------------


def _baseline_train_config(run: Run) -> TrainConfig:
    """How the fixed-feature models train. Their parameters (readout, Δ′) start at zero, so the
    "relative" rule has no scale to follow: they take normalized steps of δ =
    ``protocol.baseline_delta`` (0 = ``train.delta``) in their standardized coordinates, where
    each problem is convex. A "constant" rule is kept as configured."""
    t = run.cfg.train
    if t.step == "constant":
        return t
    return dataclasses.replace(t, step="normalized", delta=run.cfg.protocol.baseline_delta or t.delta)


def _fixed_feature_protocol(
    run: Run,
    name: str,
    make: Callable[[str, int], tuple[Any, Any, Any]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """single / ensemble / training average / KD for a fixed-feature learner family.

    ``make(stream, count)`` returns (learner, train inputs, test inputs) for ``count`` fresh
    replicas whose random parts come from ``stream``.
    """
    cfg, p = run.cfg, run.cfg.protocol
    S = cfg.n_seeds
    steps = p.baseline_steps or cfg.train.max_steps
    tcfg = _baseline_train_config(run)
    y = run.train.y
    out: dict[str, Any] = {}

    learner, Xtr, Xte = make(f"{name}", S)
    res = _train(run, f"{name}:single", learner, Xtr, LabelObjective(y), S, steps, tcfg=tcfg)
    test_single = batched_logits(learner, Xte, _eval_chunk(run, learner, Xte))
    train_single = batched_logits(learner, Xtr, _eval_chunk(run, learner, Xtr))
    out["single"] = {"test_error": _errors_json(error_rates(test_single, run.test)), **_training_json(res)}

    G = ensemble.combine(test_single, p.ensemble_combine)[None]
    out["ensemble"] = {"test_error": _errors_json(error_rates(G, run.test)), "K": S}

    K = p.training_average_K or S
    n_models = max(1, S // K)
    learner, Xtr_avg, Xte_avg = make(f"{name}", n_models * K)
    objective = LabelObjective(y, group_size=K)
    res = _train(run, f"{name}:training_average", learner, Xtr_avg, objective, n_models, steps, tcfg=tcfg)
    avg = objective.combine(batched_logits(learner, Xte_avg, _eval_chunk(run, learner, Xte_avg)))
    out["training_average"] = {
        "test_error": _errors_json(error_rates(avg, run.test)),
        "K": K,
        **_training_json(res),
    }

    teacher = ensemble.combine(train_single, p.ensemble_combine)[None] * p.kd_teacher_scale
    learner, Xtr_s, Xte_s = make(f"{name}_student", S)
    res = _train(
        run,
        f"{name}:kd",
        learner,
        Xtr_s,
        _kd_objective(run, teacher),
        S,
        p.kd_steps or steps,
        _kd_threshold(run),
        tcfg=tcfg,
    )
    kd = batched_logits(learner, Xte_s, _eval_chunk(run, learner, Xte_s))
    out["kd"] = {"test_error": _errors_json(error_rates(kd, run.test)), **_training_json(res)}
    return out, {"single_test_logits": test_single, "kd_test_logits": kd}


def _rf_sigma(run: Run) -> float:
    return run.cfg.protocol.rf_sigma_0 or run.cfg.model.sigma_0


def stage_random_features(run: Run) -> tuple[dict[str, Any], dict[str, Any]]:
    cfg, m = run.cfg, run.cfg.model
    width = cfg.protocol.rf_width
    sigma = _rf_sigma(run)
    D = run.dist.weight_dim(cfg.data.n_train)

    features: dict[tuple[str, int], tuple[Tensor, Tensor]] = {}

    def make(stream: str, count: int):
        if (stream, count) not in features:  # the training average reuses the singles' features
            W = init_weights(cfg.seed, stream, list(range(count)), 1, width, D, sigma, run.device, run.dtype)
            key = derive_seed(cfg.seed, stream)
            chunk = _eval_chunk(run, TwoLayerCNN(W, m.q, m.varrho), run.test_inputs)
            phi_tr = random_feature_map(run.train_inputs, W[:, 0], m.q, m.varrho, sigma, key, chunk)
            phi_te = random_feature_map(run.test_inputs, W[:, 0], m.q, m.varrho, sigma, key, chunk)
            scale = phi_tr.pow(2).mean(0, keepdim=True).sqrt().clamp_min(1e-30)
            features[(stream, count)] = (phi_tr / scale, phi_te / scale)
        readout = torch.zeros(count, cfg.data.k, width, device=run.device, dtype=run.dtype)
        return (RandomFeatures(readout), *features[(stream, count)])

    part, tensors = _fixed_feature_protocol(run, "rf", make)
    part.update({"width": width, "sigma_0": sigma})
    return part, tensors


def stage_ntk(run: Run) -> tuple[dict[str, Any], dict[str, Any]]:
    cfg, m = run.cfg, run.cfg.model
    sigma = _rf_sigma(run)
    D = run.dist.weight_dim(cfg.data.n_train)

    def make(stream: str, count: int):
        W0 = init_weights(
            cfg.seed, stream, list(range(count)), cfg.data.k, m.m, D, sigma, run.device, run.dtype
        )
        key = derive_seed(cfg.seed, stream)
        train_inputs = run.train_inputs
        cnn = TwoLayerCNN(W0, m.q, m.varrho)
        probe_seeds = [derive_seed(cfg.seed, f"{stream}-tangent-probe", i) for i in range(count)]
        eval_chunk = _eval_chunk(run, cnn, train_inputs)
        scale = tangent_scale(train_inputs, W0, m.q, m.varrho, sigma, key, probe_seeds, chunk=eval_chunk)
        learner = LinearizedCNN(W0, m.q, m.varrho, sigma, key, scale)
        if _chunk(run, cnn, train_inputs) >= len(train_inputs):  # full-batch steps pass this object
            learner.fix_inputs(train_inputs)
        return learner, train_inputs, run.test_inputs

    part, tensors = _fixed_feature_protocol(run, "ntk", make)
    part.update({"sigma_0": sigma})
    return part, tensors


STAGE_FUNCTIONS: dict[str, Callable[[Run], tuple[dict[str, Any], dict[str, Any]]]] = {
    "single": stage_single,
    "ensemble": stage_ensemble,
    "training_average": stage_training_average,
    "kd": stage_kd,
    "self_kd": stage_self_kd,
    "ensemble_of_kd": stage_ensemble_of_kd,
    "random_features": stage_random_features,
    "ntk": stage_ntk,
}
