"""Screen a KD / self-KD setting on the first few students only (cheap), reusing a cached single stage.

The students are the same as the first S students of the full protocol (init_weights draws each
replica from its own index), and the teacher is the full 10-model ensemble (kd) or the first S
single models (self_kd), so a screened student reproduces its full-run counterpart exactly.

    python scripts/kd/screen.py --students 3 --stage kd --set protocol.kd_teacher_scale=4 \
        [--step-rule relative] [--single runs/paper-try1/stages/single.pt] [--log scripts/kd/screen.jsonl]

Prints per-student test error (all, single-view), train accuracy, views; appends one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch

from multiview.cli import build_config
from multiview.protocol import load_stage, run_stage
from multiview.run import Run, Trainer, learned
from multiview.train import TrainResult
from multiview.train import train as base_train


def diagnosing_trainer(run: Run, every: int) -> Trainer:
    """A trainer that trains in segments of ``every`` steps with a line of statistics after each."""
    y, single = run.train.y, run.train.single

    def seg_train(
        learner, X, objective, n_runs, tcfg, *, max_steps, loss_threshold=None, probe=None, progress=None
    ):
        done, results = 0, []
        while done < max_steps:
            n = min(every, max_steps - done)
            r = base_train(learner, X, objective, n_runs, tcfg, max_steps=n, loss_threshold=loss_threshold)
            results.append(r)
            done += n
            with torch.no_grad():
                logits, _ = learner.forward(X)
            own = logits.gather(-1, y.expand(logits.shape[0], -1)[..., None]).squeeze(-1)
            wrong = logits.scatter(-1, y.expand(logits.shape[0], -1)[..., None], float("-inf")).max(-1).values
            _, _, views = learned(learner.weights, run.dist, run.cfg)
            nv = views.sum(-1).float()
            print(
                f"step {done:5d} acc {[round(float(x), 3) for x in r.final_train_accuracy]} "
                f"Fy(multi) {[round(float(x), 1) for x in own[:, ~single].mean(1)]} "
                f"Fy(single) {[round(float(x), 1) for x in own[:, single].mean(1)]} "
                f"maxwrong {[round(float(x), 1) for x in wrong.mean(1)]} "
                f"max|F| {float(logits.abs().max()):.3g} "
                f"views/class {[round(float(x), 2) for x in nv.mean(1)]} "
                f"none {[int(x) for x in (nv == 0).sum(1)]} "
                f"loss {[round(float(x), 3) for x in r.final_loss]}",
                flush=True,
            )
            if bool(r.converged.all()):
                break
        last = results[-1]
        return TrainResult(
            steps=sum(r.steps for r in results),
            converged=last.converged,
            final_loss=last.final_loss,
            final_train_accuracy=last.final_train_accuracy,
            flow_time=sum(r.flow_time for r in results),
            seconds=sum(r.seconds for r in results),
            history=last.history,
        )

    return seg_train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--students", type=int, default=3)
    ap.add_argument("--stage", default="kd", choices=("kd", "self_kd"))
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--step-rule", default=None, help="student step rule (default: the preset's)")
    ap.add_argument("--single", default="runs/paper-try1/stages/single.pt")
    ap.add_argument("--log", default="scripts/kd/screen.jsonl")
    ap.add_argument("--name", default="")
    ap.add_argument("--diag", type=int, default=0, help="print train-set logit stats every DIAG steps")
    a = ap.parse_args()

    cfg = build_config("paper", None, a.set)
    single = dict(load_stage(a.single, cfg, "single"))  # the full run's single models
    S = a.students
    if a.stage == "self_kd":
        single = {
            k: (v[:S] if torch.is_tensor(v) and v.shape[0] == cfg.n_seeds else v) for k, v in single.items()
        }
    cfg_s = dataclasses.replace(cfg, n_seeds=S)
    if a.step_rule:
        cfg_s = dataclasses.replace(cfg_s, train=dataclasses.replace(cfg_s.train, step=a.step_rule))
    run = Run.create(cfg_s, "cpu")  # the same data as the full run: it depends on [data] and the seed
    run.tensors["single"] = single
    if a.diag:
        run.trainer = diagnosing_trainer(run, a.diag)
    t = time.perf_counter()
    part, _ = run_stage(run, a.stage)
    secs = time.perf_counter() - t
    v = part["views"]
    mu = cfg.data.mu
    err = part["test_error"]["all"]
    rec = {
        "name": a.name,
        "stage": a.stage,
        "sets": a.set,
        "step_rule": a.step_rule or cfg.train.step,
        "students": S,
        "err_over_mu": [e / mu for e in err],
        "mean_err_over_mu": sum(err) / len(err) / mu,
        "single_view_err": part["test_error"]["single_view"],
        "multi_view_err": part["test_error"]["multi_view"],
        "train_accuracy": part["train_accuracy"],
        "final_loss": part["final_loss"],
        "steps": part["steps"],
        "gained_fraction": v["gained_fraction"],
        "both_fraction": v["both_fraction"],
        "none_fraction": v["none_fraction"],
        "exactly_one_fraction": v["exactly_one_fraction"],
        "seconds": secs,
    }
    for key in ("both_when_lotteries_differ", "one_when_lotteries_agree"):
        if key in v:
            rec[key] = v[key]
    with open(a.log, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(json.dumps({k: (round(x, 4) if isinstance(x, float) else x) for k, x in rec.items()}, indent=None))


if __name__ == "__main__":
    main()
