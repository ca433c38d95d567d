"""Screen a distillation setting on a few students against a cached single stage (the fast loop).

    multiview simulate --preset paper --only ensemble --out runs/paper        # once: the teachers
    python scripts/kd/screen.py runs/paper --stage kd --students 3 \\
        --set protocol.kd_teacher_scale=10 --set protocol.kd_steps=8000

The students are the first S students of the full run (each replica is drawn from its own index),
the KD teacher is the full ensemble of the run's single models, the self-KD teachers are the first
S single models: a screened student is its full-run counterpart. ``--stage kd_onehot`` trains the
same students against the one-hot teacher (the ensemble's logit of the label alone): the control
that separates dark knowledge from the teacher's confidence. ``--set`` takes any setting; only
``[protocol]`` ones may differ from the cached run (the single stage's checkpoint must match).

Prints the students' history (every ``protocol.kd_log_every`` steps: flow time, both-views
fraction, the losing views' power-phase progress, test error on ``protocol.kd_eval_examples``
test examples), then what holds the losing views back: how many other classes' features a
class's neurons learned, and on the training examples that carry an unlearned losing view as a
cross-class feature, the student's F_i (with and without its noise coordinates) against the
teacher's, and the largest |F| on the training set (a blow-up shows there). Appends one JSON line
per screen to ``--log``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from multiview.cli import build_config
from multiview.methods import ensemble_teacher
from multiview.model import TwoLayerCNN
from multiview.protocol import load_stage, run_stage
from multiview.run import Run, logits_on
from multiview.train import TrainResult, train


def first(tensors: dict, S: int, n_seeds: int) -> dict:
    """The first S models' tensors (the self-KD teachers of S students)."""
    return {k: (v[:S] if torch.is_tensor(v) and v.shape[0] == n_seeds else v) for k, v in tensors.items()}


def history_rows(part: dict, mu: float) -> list[dict]:
    """One row per logged step: flow time and errors per student, both-views fraction, progress."""
    h = part["history"]
    rows = []
    for t, step in enumerate(h["step"]):
        progress = torch.tensor(h["losing_view"]["progress"][t]).flatten()
        progress = progress[~progress.isnan()]
        row = {
            "step": step,
            "flow": [float(f"{x:.3g}") for x in h["flow_time"][t]],
            "both": [round(x, 2) for x in h["both_fraction"][t]],
            "progress_p10": round(float(progress.quantile(0.1)), 3) if progress.numel() else None,
        }
        if "test_error" in h:
            errs = torch.tensor(h["test_error"][t])  # (S, 3): all, multi-view, single-view
            row["err_over_mu"] = [round(float(e) / mu, 3) for e in errs[:, 0]]
            row["mv_err"] = [round(float(e), 4) for e in errs[:, 1]]
            row["sv_err"] = [round(float(e), 4) for e in errs[:, 2]]
        rows.append(row)
    return rows


def mechanism(run: Run, weights: torch.Tensor, learned: torch.Tensor, teacher: torch.Tensor) -> dict:
    """What holds the losing views back (see the module docstring)."""
    cfg, dist = run.cfg, run.dist
    k, q, varrho = cfg.data.k, cfg.model.q, cfg.model.varrho
    S = weights.shape[0]
    coords = dist.feature_coordinates(weights)  # (S, k, m, 2k)
    own = torch.arange(2 * k)[None, :] // 2 == torch.arange(k)[:, None]  # (k, 2k)
    foreign = coords.masked_fill(own[None, :, None, :], -math.inf).amax(2) >= varrho  # (S, k, 2k)
    features_only = weights.clone()
    features_only[..., 2 * k :] = 0  # the orthogonal model's noise coordinates removed
    full = logits_on(TwoLayerCNN(weights, q, varrho), run.train_inputs, cfg.train)
    feat = logits_on(TwoLayerCNN(features_only, q, varrho), run.train_inputs, cfg.train)
    rows = []
    for s in range(S):
        for i in range(k):
            for view in range(2):
                if bool(learned[s, i, view]) or not bool(learned[s, i].any()):
                    continue
                carry = run.train.cross_features[:, 2 * i + view] & (run.train.y != i)
                if bool(carry.any()):
                    t = teacher[min(s, teacher.shape[0] - 1), carry, i].mean()
                    rows.append([float(full[s, carry, i].mean()), float(feat[s, carry, i].mean()), float(t)])
    out = {
        "foreign_features_learned": [int(x) for x in foreign.sum((1, 2))],
        "max_abs_train_logit": float(full.abs().max()),
    }
    if rows:
        r = torch.tensor(rows)
        out["unlearned_views"] = len(rows)
        out["F_i_on_their_cross_examples"] = round(float(r[:, 0].mean()), 3)
        out["F_i_features_only"] = round(float(r[:, 1].mean()), 3)
        out["teacher_G_i"] = round(float(r[:, 2].mean()), 3)
    return out


def push_split(run: Run, learner: TwoLayerCNN, objective, loser: torch.Tensor, done: torch.Tensor) -> dict:
    """Where the push on the losing views comes from: for each (student, class) whose losing view
    (R, k) is not learned yet (``done`` (R, k) False), the descent direction's component along that
    view on its best neuron, summed over the class's own training examples and over the other
    classes' examples (which carry the view only as a cross-class feature); medians over pairs."""
    cfg, X = run.cfg, run.train_inputs
    k, m = cfg.data.k, cfg.model.m
    R, N, P = learner.weights.shape[0], len(X), X.n_patches
    logits, slopes = learner.forward(X)
    leaf = logits.detach().requires_grad_(True)
    surrogate, _ = objective(objective.combine(leaf), torch.arange(N))
    (dlogits,) = torch.autograd.grad(surrogate.sum(), leaf)  # (R, N, k)
    feature = 2 * torch.arange(k)[None, :] + loser  # (R, k)
    coef = X.coef.permute(2, 0, 1)[feature]  # (R, k, N, P): the view's weight on every patch
    along = torch.einsum("rkinp,rknp->rkin", slopes.view(R, k, m, N, P), coef)  # (R, k, m, N)
    corr = run.dist.feature_coordinates(learner.weights)  # (R, k, m, 2k)
    best = corr.gather(-1, feature[:, :, None, None].expand(R, k, m, 1)).squeeze(-1).argmax(-1)
    along = along.gather(2, best[:, :, None, None].expand(R, k, 1, N)).squeeze(2)  # (R, k, N)
    push = -dlogits.permute(0, 2, 1) * along  # (R, k, N)
    own = run.train.y[None, :] == torch.arange(k)[:, None]  # (k, N)
    keep = ~done
    if not bool(keep.any()):
        return {}
    return {
        "push_own_examples": float((push * own).sum(-1)[keep].median()),
        "push_other_examples": float((push * ~own).sum(-1)[keep].median()),
    }


def tracing_trainer(run: Run, every: int):
    """A trainer that trains in segments of ``every`` steps (the same trajectory: each step depends
    on the weights alone) and prints the push split after each; the histories are joined."""

    def trainer(learner, X, objective, n_runs, tcfg, *, max_steps, max_flow_time=None, probe=None, **kw):
        L0 = run.dist.feature_coordinates(learner.weights)
        k = run.cfg.data.k
        idx = torch.arange(k)
        L0 = L0.view(*L0.shape[:-1], k, 2)[:, idx, :, idx].permute(1, 0, 2, 3).amax(2)  # (R, k, 2)
        loser = L0.argmin(-1)
        parts: list[TrainResult] = []
        done = 0
        flow = torch.zeros(n_runs, dtype=learner.weights.dtype)
        while done < max_steps:
            n = min(every, max_steps - done)
            limit = None if max_flow_time is None else max_flow_time - float(flow.min())
            r = train(
                learner, X, objective, n_runs, tcfg, max_steps=n, max_flow_time=limit, probe=probe, **kw
            )
            if parts:  # join: shift this segment's record by the steps and flow time so far
                r.history["step"] = r.history["step"] + done
                r.history["flow_time"] = r.history["flow_time"] + flow
            parts.append(r)
            done += n
            flow = flow + r.flow_time
            lam = run.dist.feature_coordinates(learner.weights)
            lam = lam.view(*lam.shape[:-1], k, 2)[:, idx, :, idx].permute(1, 0, 2, 3).amax(2)
            learned = lam.gather(-1, loser[..., None]).squeeze(-1) >= run.cfg.model.varrho
            print(
                json.dumps({"step": done, **push_split(run, learner, objective, loser, learned)}), flush=True
            )
            if all(reason != "max_steps" for reason in r.stopped_by):
                break
        last = parts[-1]
        # each later segment's first record repeats the previous segment's last one
        history = {
            key: torch.cat([p.history[key][1 if i else 0 :] for i, p in enumerate(parts)])
            for key in last.history
            if key in parts[0].history
        }
        return TrainResult(
            steps=sum(p.steps for p in parts),
            converged=last.converged,
            final_loss=last.final_loss,
            final_train_accuracy=last.final_train_accuracy,
            flow_time=flow,
            seconds=sum(p.seconds for p in parts),
            stopped_by=last.stopped_by,
            history=history,
        )

    return trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a run folder with a finished single stage")
    ap.add_argument("--stage", default="kd", choices=("kd", "kd_onehot", "self_kd"))
    ap.add_argument("--students", type=int, default=3)
    ap.add_argument("--preset", default=None, help="the run's preset (default: read RUN/config.toml)")
    ap.add_argument("--set", action="append", default=[], help="a setting, as in multiview simulate")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--log", type=Path, default=Path("scripts/kd/screen.jsonl"))
    ap.add_argument("--name", default="")
    ap.add_argument(
        "--trace",
        type=int,
        default=0,
        help="every TRACE steps, print where the losing views' push comes from",
    )
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    config_file = None if a.preset else a.run / "config.toml"
    cfg = build_config(a.preset, config_file, a.set)
    single = dict(load_stage(a.run / "stages" / "single.pt", cfg, "single"))
    S = a.students
    run = Run.create(cfg.with_overrides({"n_seeds": S}), "cpu")  # the full run's data
    run.tensors["single"] = first(single, S, cfg.n_seeds) if a.stage == "self_kd" else single
    if a.trace:
        run.trainer = tracing_trainer(run, a.trace)
    t0 = time.perf_counter()
    part, tensors = run_stage(run, a.stage)
    seconds = time.perf_counter() - t0
    mu = cfg.data.mu
    rows = history_rows(part, mu)
    for row in rows:
        print(json.dumps(row))
    if a.stage == "self_kd":
        teacher = run.tensors["single"]["train_logits"]
    else:
        teacher = ensemble_teacher(run)
    teacher = teacher * cfg.protocol.kd_teacher_scale
    mech = mechanism(run, tensors["weights"], tensors["learned"], teacher)
    v = part["views"]
    rec = {
        "name": a.name,
        "run": str(a.run),
        "stage": a.stage,
        "sets": a.set,
        "students": S,
        "err_over_mu": [round(e / mu, 4) for e in part["test_error"]["all"]],
        "single_view_err": part["test_error"]["single_view"],
        "multi_view_err": part["test_error"]["multi_view"],
        "train_accuracy": part["train_accuracy"],
        "steps": part["steps"],
        "flow_time": part["flow_time"],
        "stopped_by": part["stopped_by"],
        "both_fraction": v["both_fraction"],
        "none_fraction": v["none_fraction"],
        **{key: v[key] for key in ("both_when_lotteries_differ", "one_when_lotteries_agree") if key in v},
        **mech,
        "seconds": round(seconds, 1),
        "history": rows,
    }
    with open(a.log, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(json.dumps({key: val for key, val in rec.items() if key != "history"}))


if __name__ == "__main__":
    main()
