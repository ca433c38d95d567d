"""The paper's methods as stages of the simulator's protocol (spec §5, §7).

* ``single``: S models from independent seeds on the same data (Theorem 1);
* ``ensemble``: the average of their outputs, and its error against ensemble size (Theorem 2);
* ``training_average``: K sub-networks trained jointly on the loss of their mean logits;
* ``kd``: fresh students distilled from the ensemble of the single models (Theorem 3);
* ``self_kd``: one fresh student per single model, distilled from it (Theorem 4);
* ``ensemble_of_kd``: the ensemble of the KD students.

Each takes the :class:`~multiview.run.Run` and returns its part of ``results.json`` and its
tensors (weights (R, k, m, D), test logits (R, n, k), learned views (R, k, 2), ...).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from multiview import ensemble
from multiview.driver import implements
from multiview.evaluate import error_rates, explain_single_view
from multiview.losses import LabelObjective
from multiview.model import TwoLayerCNN
from multiview.probes import (
    exactly_one,
    lottery,
    lottery_agreement,
    mean_offdiagonal,
    memorization,
    shared_views,
    view_probe,
)
from multiview.run import (
    Run,
    errors_json,
    evaluate,
    fit,
    kd_objective,
    kd_threshold,
    learned,
    logits_on,
    new_cnn,
    student_train_config,
    training_json,
    view_summary,
)
from multiview.stages import SYNTHETIC
from multiview.train import TrainResult

Part = tuple[dict[str, Any], dict[str, Any]]


@implements(SYNTHETIC, "single")
def stage_single(run: Run) -> Part:
    cfg = run.cfg
    S = cfg.n_seeds
    net = new_cnn(run, "model", S)
    L0, P0, _ = learned(net.weights, run.dist, cfg)
    Xtr = run.train_inputs
    res = fit(
        run,
        "single",
        net,
        Xtr,
        LabelObjective(run.train.y),
        S,
        cfg.train.max_steps,
        probe=view_probe(run.dist),
    )
    LT, PT, views_learned = learned(net.weights, run.dist, cfg)
    test_logits, errs = evaluate(run, net)
    train_logits = logits_on(net, Xtr, cfg.train)
    winner, in_M = lottery(L0, cfg.probes.margin(cfg.model.m))
    shared = shared_views(views_learned)
    n_mem = cfg.probes.memorization_examples or cfg.data.n_train
    mem = memorization(
        net.weights, run.train.subset(slice(0, n_mem)), run.dist, views_learned, cfg.model.sigma_0
    )
    views = {
        **view_summary(views_learned),
        "lottery_agreement": lottery_agreement(views_learned, winner, in_M)["agreement"],
        "lottery": {
            **lottery_agreement(views_learned, winner, in_M),
            "predicted_winner": winner.tolist(),
            "in_M": in_M.tolist(),
            "margin": cfg.probes.margin(cfg.model.m),
            "by_initial_ratio": lottery_by_ratio(L0, views_learned),
        },
        "Lambda_init": L0.tolist(),
        "Lambda_final": LT.tolist(),
        "Phi_init": P0.tolist(),
        "Phi_final": PT.tolist(),
        "threshold": cfg.probes.learned_threshold * cfg.model.varrho,
        "overlap": {
            "same_views": shared["same_views"].tolist(),
            "jaccard": shared["jaccard"].tolist(),
            "mean_same_views": mean_offdiagonal(shared["same_views"]),
            "mean_jaccard": mean_offdiagonal(shared["jaccard"]),
        },
    }
    part = {
        "test_error": errors_json(errs),
        **training_json(res, cfg.train.max_steps, cfg.train.loss_threshold),
        "explanation": explain_single_view(errs["correct"], views_learned, run.test),
        "memorization": mem,
        "views": views,
        "history": history_json(res),
    }
    tensors = {
        "weights": net.weights,
        "test_logits": test_logits,
        "train_logits": train_logits,
        "learned": views_learned,
        "Lambda_init": L0,
    }
    return part, tensors


def lottery_by_ratio(
    L0: Tensor, learned: Tensor, edges: tuple[float, ...] = (1.0, 1.05, 1.1, 1.25, 1.5, 2.0, 4.0)
) -> dict[str, list[float]]:
    """Agreement of the learned view with argmax Λ(0), binned by the initial ratio max/min of
    Λ_{i,1}(0), Λ_{i,2}(0) (classes with exactly one view learned and both Λ(0) > 0)."""
    hi = L0.max(-1).values
    lo = L0.min(-1).values
    one = exactly_one(learned) & (lo > 0)
    ratio = torch.where(lo > 0, hi / lo.clamp_min(1e-30), torch.full_like(hi, float("inf")))
    agree = learned.long().argmax(-1) == L0.argmax(-1)
    out: dict[str, list[float]] = {"bin_low": [], "bin_high": [], "agreement": [], "count": []}
    bounds_ = list(edges) + [float("inf")]
    for a, b in zip(bounds_[:-1], bounds_[1:], strict=False):
        mask = one & (ratio >= a) & (ratio < b)
        out["bin_low"].append(a)
        out["bin_high"].append(b)
        out["count"].append(int(mask.sum()))
        out["agreement"].append(float(agree[mask].float().mean()) if mask.any() else float("nan"))
    return out


def history_json(res: TrainResult) -> dict[str, Any]:
    """The training curve: loss, accuracy, flow time and (when probed) Λ, Φ per logged step."""
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


@implements(SYNTHETIC, "ensemble")
def stage_ensemble(run: Run) -> Part:
    single = run.tensors["single"]
    how = run.cfg.protocol.ensemble_combine
    logits = single["test_logits"]
    members = single["learned"]
    G = ensemble.combine(logits, how)[None]
    errs = error_rates(G, run.test)
    union = members.any(0, keepdim=True)
    part = {
        "test_error": errors_json(errs),
        "K": int(logits.shape[0]),
        "combine": how,
        "curve": ensemble.ensemble_curve(logits, members, run.test, how),
        "views": {
            **view_summary(union),
            "covered_fraction": float(ensemble.coverage(members).float().mean()),
        },
        "explanation": explain_single_view(errs["correct"], union, run.test),
    }
    return part, {"test_logits": G}


@implements(SYNTHETIC, "training_average")
def stage_training_average(run: Run) -> Part:
    cfg = run.cfg
    K = cfg.protocol.training_average_K or cfg.n_seeds
    G = max(1, cfg.n_seeds // K)
    net = new_cnn(run, "training_average", G * K)
    objective = LabelObjective(run.train.y, group_size=K)
    res = fit(run, "training_average", net, run.train_inputs, objective, G, cfg.train.max_steps)
    logits = objective.combine(logits_on(net, run.test_inputs, cfg.train))
    errs = error_rates(logits, run.test)
    _, _, sub = learned(net.weights, run.dist, cfg)
    union = sub.view(G, K, *sub.shape[1:]).any(1)
    part = {
        "test_error": errors_json(errs),
        **training_json(res, cfg.train.max_steps, cfg.train.loss_threshold),
        "K": K,
        "models": G,
        "views": {
            **view_summary(union),
            "sub_networks": view_summary(sub),
            "views_per_class_mean": float(union.sum(-1).float().mean()),
        },
        "explanation": explain_single_view(errs["correct"], union, run.test),
    }
    return part, {"weights": net.weights, "test_logits": logits}


def student_views(student: Tensor, L0: Tensor, teacher: Tensor) -> dict[str, Any]:
    """What students (R, k, 2) learned relative to their own lottery (Λ(0) (R, k, 2)) and to
    their teachers' learned views ``teacher`` (R or 1, k, 2).

    ``gained_fraction``: over (student, class) pairs where the student's lottery picks one view
    and the teacher knows the other, how often the student learned that other view too.
    """
    winner, _ = lottery(L0, 0.0)
    other = 1 - winner
    teacher = teacher.expand_as(student)
    has_other = teacher.gather(-1, other[..., None]).squeeze(-1)
    learned_other = student.gather(-1, other[..., None]).squeeze(-1)
    covers = (student | ~teacher).all(-1)  # student ⊇ teacher
    return {
        **view_summary(student),
        "gained_fraction": float((learned_other & has_other).sum() / has_other.sum().clamp_min(1)),
        "gained_pairs": int(has_other.sum()),
        "covers_teacher_fraction": float(covers.float().mean()),
        "own_lottery_winner": winner.tolist(),
    }


def student_probe(run: Run, student: TwoLayerCNN) -> Any:
    """What distilled students record every ``protocol.kd_log_every`` steps: Λ (R, k, 2) and their
    test error (R, 3: all, multi-view, single-view) on the first ``protocol.kd_eval_examples``
    test examples (scored with ``student``, whose weights the trainer updates in place)."""
    n_eval = min(run.cfg.protocol.kd_eval_examples, run.cfg.data.n_test)
    test, test_inputs = run.test.subset(slice(0, n_eval)), run.test_inputs[0:n_eval]
    base = view_probe(run.dist)

    def probe(weights: Tensor) -> dict[str, Tensor]:
        out = {"Lambda": base(weights)["Lambda"]}
        if n_eval:
            errs = error_rates(logits_on(student, test_inputs, run.cfg.train), test)
            out["test_error"] = torch.stack([errs["all"], errs["multi_view"], errs["single_view"]], -1)
        return out

    return probe


def losing_view_progress(Lambda: Tensor, L0: Tensor, q: int) -> tuple[Tensor, Tensor]:
    """The losing view of each (student, class), the view with the smaller Λ(0) (R, k), and its
    power-phase progress 1 − (Λ(0)/Λ(t))^(q−2) for Λ history (T, R, k, 2): 0 at initialization, → 1
    as the view takes off (T, R, k); NaN for a view no neuron starts positively correlated with
    (Λ(0) ≤ 0) or for q ≤ 2, clipped at −1 where the view shrank."""
    loser = L0.argmin(-1)
    L0l = L0.gather(-1, loser[..., None]).squeeze(-1)
    Lt = Lambda.gather(-1, loser[None, ..., None].expand(Lambda.shape[0], *loser.shape, 1)).squeeze(-1)
    progress = 1 - (L0l / Lt.clamp_min(1e-30)) ** max(q - 2, 0)
    valid = (L0l > 0) & torch.tensor(q > 2)
    return loser, torch.where(valid, progress.clamp(min=-1.0), torch.full_like(progress, float("nan")))


def student_history_json(res: TrainResult, L0: Tensor, q: int, threshold: float) -> dict[str, Any]:
    """A student's curve: step, flow time (T, R), loss, accuracy, Λ (T, R, k, 2), the test error on
    the probe's examples (T, R, 3) and, per (student, class), the losing view's progress (T, R, k)
    with the fraction of (student, class) pairs that know both views (T, R)."""
    out = history_json(res)
    h = res.history
    loser, progress = losing_view_progress(h["Lambda"], L0, q)
    out["losing_view"] = {"view": loser.tolist(), "progress": progress.tolist()}
    out["both_fraction"] = (h["Lambda"] >= threshold).all(-1).float().mean(-1).tolist()
    if "test_error" in h:
        out["test_error"] = h["test_error"].tolist()
    return out


def distil(
    run: Run, name: str, teacher: Tensor, teacher_learned: Tensor, stream: str | None = None, **extra: Any
) -> tuple[Part, Tensor]:
    """S fresh students of the random stream ``<stream>_student`` (default: the stage ``name``)
    distilled from teacher logits on the training set (G or 1, N, k), evaluated and held against
    their teachers' learned views (G or 1, k, 2): the stage's part (``extra`` entries after
    ``objective``) and tensors, and Λ(0). The teacher is multiplied by
    ``protocol.kd_teacher_scale`` here."""
    cfg, p = run.cfg, run.cfg.protocol
    net = new_cnn(run, f"{stream or name}_student", cfg.n_seeds)
    L0, _, _ = learned(net.weights, run.dist, cfg)
    objective = kd_objective(p, cfg.data.k, run.train.y, teacher * p.kd_teacher_scale)
    steps = p.kd_steps or cfg.train.max_steps
    res = fit(
        run,
        name,
        net,
        run.train_inputs,
        objective,
        cfg.n_seeds,
        steps,
        kd_threshold(cfg),
        probe=student_probe(run, net),
        tcfg=student_train_config(cfg),
        max_flow_time=p.kd_flow_time or None,
    )
    _, _, views_learned = learned(net.weights, run.dist, cfg)
    test_logits, errs = evaluate(run, net)
    threshold = cfg.probes.learned_threshold * cfg.model.varrho
    part = {
        "test_error": errors_json(errs),
        **training_json(res, steps, kd_threshold(cfg)),
        "objective": p.kd_objective,
        "teacher_scale": p.kd_teacher_scale,
        **extra,
        "views": student_views(views_learned, L0, teacher_learned),
        "explanation": explain_single_view(errs["correct"], views_learned, run.test),
        "history": student_history_json(res, L0, cfg.model.q, threshold),
    }
    return (part, {"weights": net.weights, "test_logits": test_logits, "learned": views_learned}), L0


def one_hot_teacher(logits: Tensor, y: Tensor) -> Tensor:
    """Teacher logits (G, N, k) with every wrong class set to 0: the teacher's confidence in the
    label kept, its dark knowledge (what it says of the other classes) removed."""
    index = y.expand(logits.shape[0], -1)[..., None]
    return torch.zeros_like(logits).scatter(-1, index, logits.gather(-1, index))


def ensemble_teacher(run: Run) -> Tensor:
    """The ensemble of the single models on the training set (1, N, k), unscaled."""
    return ensemble.combine(run.tensors["single"]["train_logits"], run.cfg.protocol.ensemble_combine)[None]


def _tau(run: Run) -> float | None:
    p = run.cfg.protocol
    return p.tau(run.cfg.data.k) if p.kd_objective == "theory" else None


@implements(SYNTHETIC, "kd")
def stage_kd(run: Run) -> Part:
    union = run.tensors["single"]["learned"].any(0, keepdim=True)
    stage, _ = distil(run, "kd", ensemble_teacher(run), union, tau=_tau(run))
    return stage


@implements(SYNTHETIC, "kd_onehot")
def stage_kd_onehot(run: Run) -> Part:
    """The control of Theorem 3's mechanism: the same students (the same initializations),
    objective and steps as ``kd``, but their teacher keeps only its logit of the true class. What
    KD gains over this control comes from the teacher's dark knowledge; what this control gains
    too comes from the teacher's confidence in the label."""
    union = run.tensors["single"]["learned"].any(0, keepdim=True)
    teacher = one_hot_teacher(ensemble_teacher(run), run.train.y)
    stage, _ = distil(run, "kd_onehot", teacher, union, stream="kd", tau=_tau(run))
    return stage


@implements(SYNTHETIC, "self_kd")
def stage_self_kd(run: Run) -> Part:
    single = run.tensors["single"]
    (part, tensors), L0 = distil(run, "self_kd", single["train_logits"], single["learned"])
    # Theorem 4: the student learns its own lottery winner ∪ its teacher's view.
    teacher_one = exactly_one(single["learned"])
    teacher_view = single["learned"].long().argmax(-1)
    own = lottery(L0, 0.0)[0]
    differ = teacher_one & (teacher_view != own)
    same = teacher_one & (teacher_view == own)
    both = tensors["learned"].all(-1)
    views = part["views"]
    views["both_when_lotteries_differ"] = float(both[differ].float().mean()) if differ.any() else float("nan")
    views["one_when_lotteries_agree"] = (
        float(exactly_one(tensors["learned"])[same].float().mean()) if same.any() else float("nan")
    )
    return part, tensors


@implements(SYNTHETIC, "ensemble_of_kd")
def stage_ensemble_of_kd(run: Run) -> Part:
    kd = run.tensors["kd"]
    how = run.cfg.protocol.ensemble_combine
    G = ensemble.combine(kd["test_logits"], how)[None]
    errs = error_rates(G, run.test)
    union = kd["learned"].any(0, keepdim=True)
    part = {
        "test_error": errors_json(errs),
        "K": int(kd["test_logits"].shape[0]),
        "combine": how,
        "curve": ensemble.ensemble_curve(kd["test_logits"], kd["learned"], run.test, how),
        "views": view_summary(union),
    }
    return part, {"test_logits": G}
