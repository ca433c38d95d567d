"""Screen a student recipe of the CIFAR mode on a few students against a run's cached single models.

    multiview cifar --data DATA ... --only single,ensemble --out runs/b20      # once: the teachers
    python scripts/cifar/screen.py runs/b20 --kd 0 --self-kd 0 --control 0 \\
        --set kd_epochs=60 --set kd_t=0.5 --name e60-t0.5 --threads 1

Loads the run's config (``config.toml``) and its single models (every one must be cached: only
``[protocol]`` settings may be changed with ``--set``; without one, students train the default
``kd_epochs_factor`` × the recipe's epochs), then trains, against them, the KD students
``--kd`` (taught by the ensemble of all single models), the self-KD students ``--self-kd`` (student
i taught by single model i) and ``--control`` single models trained on the labels alone for the
students' epochs (``CifarConfig.student_epochs``) from the same initialization as single model i: the
control that tells distillation from training longer. A screened model is its full run's
counterpart (same seeds, same checkpoint key), saved under ``RUN/screens/NAME/models/``; a second
screen of the same name loads what is there. Prints the accuracies beside the single models' and
appends one JSON line per screen to ``--log`` (default ``scripts/cifar/screen.jsonl``), with the
accuracy of the ensemble of each kind's screened models where there are two or more.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

from multiview import ensemble as ens
from multiview.cifar.config import CifarConfig
from multiview.cifar.data import load_cifar
from multiview.cifar.fit import fit, new_net
from multiview.cifar.protocol import kd_students, self_kd_students, stage_single
from multiview.cifar.run import CifarRun
from multiview.cifar.train import LabelLoss, accuracy
from multiview.progress import Reporter
from multiview.seeding import derive_seed
from multiview.settings import parse_sets


class Printer(Reporter):
    def model_finished(self, stage: str, index: int, accuracy: float, seconds: float, cached: bool) -> None:
        how = "loaded" if cached else f"{seconds:.0f} s"
        print(f"  {stage} {index}: {100 * accuracy:.2f} %  ({how})", flush=True)


def indices(text: str) -> list[int]:
    return [int(i) for i in text.split(",") if i.strip()] if text else []


def control_singles(run: CifarRun, which: list[int]) -> list:
    """Single models i trained on the labels for the students' epochs (same seeds as single i)."""
    long = copy.deepcopy(run.cfg)
    long.recipe.epochs = run.cfg.student_epochs
    ctrl = copy.copy(run)
    ctrl.cfg = long
    out = []
    for i in which:
        seed = derive_seed(long.seed, "single", i, "init")
        out.append(
            fit(
                ctrl,
                "single",
                i,
                f"single {i} for {long.recipe.epochs:g} epochs",
                {"init": seed},
                lambda seed=seed: new_net(ctrl, seed),
                lambda: LabelLoss(long.recipe.label_smoothing),
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a CIFAR run folder whose single models are trained")
    ap.add_argument("--kd", default="", help="KD student indices, e.g. 0,1,2")
    ap.add_argument("--self-kd", default="", help="self-KD student indices (= their teachers')")
    ap.add_argument("--control", default="", help="single models to retrain for the students' epochs")
    ap.add_argument("--set", action="append", default=[], help="a [protocol] setting, e.g. kd_t=0.5")
    ap.add_argument("--name", required=True, help="the screen's folder under RUN/screens/")
    ap.add_argument("--log", type=Path, default=Path(__file__).with_name("screen.jsonl"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    base = CifarConfig.load_toml(args.run / "config.toml")
    cfg = base.with_overrides(parse_sets(args.set))
    changed = {k for k in cfg.to_dict() if cfg.to_dict()[k] != base.to_dict()[k]}
    if changed - {"protocol"}:
        raise SystemExit(f"only [protocol] settings may change (the single models are reused): {changed}")
    d = cfg.data
    arrays = load_cifar(d.dataset, d.path, d.labels, d.cache_dir or None)
    run = CifarRun.create(cfg, torch.device(args.device), args.run, True, Printer(), arrays)
    print(
        f"{args.name}: students {cfg.student_epochs:g} epochs, t = {cfg.protocol.kd_t}, "
        f"T = {cfg.protocol.kd_temperature}",
        flush=True,
    )
    stage_single(run)
    singles = run.models["single"]
    if not all(m.cached for m in singles):
        raise SystemExit(f"{args.run}: not every single model was cached; train them with multiview cifar")
    run.out = args.run / "screens" / args.name
    t0 = time.perf_counter()
    trained = {
        "kd": kd_students(run, indices(args.kd)),
        "self_kd": self_kd_students(run, indices(args.self_kd)),
        "control": control_singles(run, indices(args.control)),
    }
    y = run.y_test
    single_acc = [m.record["test_accuracy"] for m in singles]
    teacher = ens.combine(torch.stack([m.test_logits for m in singles]), cfg.protocol.ensemble_combine)
    row = {
        "name": args.name,
        "run": str(args.run),
        "protocol": cfg.to_dict()["protocol"],
        "student_epochs": cfg.student_epochs,
        "single": single_acc,
        "ensemble": accuracy(teacher, y),
        "seconds": time.perf_counter() - t0,
    }
    for kind, models in trained.items():
        row[kind] = {str(m.index): m.record["test_accuracy"] for m in models}
        row[f"{kind}_train_seconds"] = {str(m.index): m.record["train_seconds"] for m in models}
        if len(models) > 1:  # the ensemble of the screened models of this kind
            logits = torch.stack([m.test_logits for m in models])
            row[f"{kind}_ensemble"] = accuracy(ens.combine(logits, cfg.protocol.ensemble_combine), y)
    print(
        f"single {100 * np.mean(single_acc):.2f} % (seeds {[round(100 * a, 2) for a in single_acc]}), "
        f"ensemble {100 * row['ensemble']:.2f} %"
    )
    for kind in trained:
        if row[kind]:
            print(f"{kind}: " + ", ".join(f"{i}: {100 * a:.2f} %" for i, a in row[kind].items()))
    with args.log.open("a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
