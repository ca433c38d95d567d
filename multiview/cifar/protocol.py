"""The paper's CIFAR protocol (spec §6.1, §10), stage by stage.

Stages (the CIFAR rows of :mod:`multiview.stages`; prerequisites are added):

* ``single``: S models from independent seeds;
* ``ensemble``: the mean of their logits (or probabilities), and its accuracy against size K;
* ``training_average``: K sub-networks trained with one loss on their mean logits;
* ``kd``: fresh students distilled from the ensemble of the S single models;
* ``self_kd``: one fresh student per single model, distilled from it;
* ``ensemble_of_kd``: the ensemble of the KD students;
* ``channel_split``: a trained network's lower stages frozen, 1/n of the channels at the cut
  kept, a new network trained from there on, n = 1, 2, 4, 8 (single and ensemble);
* ``overlap``: which test images which models get wrong (:mod:`multiview.cifar.mistakes`).

:func:`run_cifar` runs them through the skeleton of :mod:`multiview.driver`. Each model is
trained, or loaded from its checkpoint, by :func:`multiview.cifar.fit.fit`; ``results.json`` is
rewritten (atomically) after every stage.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from multiview import ensemble as ens
from multiview.cifar.config import CifarConfig
from multiview.cifar.data import CifarArrays, load_cifar
from multiview.cifar.fit import accuracy_json, fit, models_json, new_net
from multiview.cifar.mistakes import wrong_set_overlap
from multiview.cifar.nets import AverageNet, SplitNet, StagedNet
from multiview.cifar.run import CifarRun, Trained
from multiview.cifar.train import KDLoss, LabelLoss, LossFn, Teacher, accuracy, predict, use_bf16
from multiview.driver import Driver, implements
from multiview.progress import Reporter
from multiview.provenance import host_environment
from multiview.seeding import derive_seed, generator
from multiview.stages import CIFAR

# --------------------------------------------------------------------------------------------
# Entry point and driver
# --------------------------------------------------------------------------------------------


def run_cifar(
    cfg: CifarConfig,
    device: str | torch.device = "cpu",
    out_dir: str | Path | None = None,
    resume: bool = False,
    reporter: Reporter | None = None,
    arrays: CifarArrays | None = None,
    labels: dict[str, Any] | None = None,
    epoch_checkpoint_s: float = 60.0,
) -> dict[str, Any]:
    """Run the configured stages and return the results (the content of ``results.json``).

    ``arrays`` skips reading the data (tests and notebooks that already hold it). With
    ``out_dir``: ``config.toml``, ``results.json`` and its tidy table after each stage (``labels``:
    extra columns of the table), one checkpoint per model, and the state of the model in training
    after an epoch, at most every ``epoch_checkpoint_s`` seconds (a resumed run continues it).
    """
    cfg.validate()
    return CifarDriver(
        cfg, torch.device(device), out_dir, resume, reporter, arrays, labels, epoch_checkpoint_s
    ).run()


class CifarDriver(Driver):
    """The driver of :func:`run_cifar`: the data on the device, checkpoints per model (not per
    stage), and the training time and throughput per model at every finish."""

    protocol = CIFAR

    def __init__(
        self,
        cfg: CifarConfig,
        device: torch.device,
        out_dir: str | Path | None,
        resume: bool,
        reporter: Reporter | None,
        arrays: CifarArrays | None,
        labels: dict[str, Any] | None = None,
        epoch_checkpoint_s: float = 60.0,
    ):
        super().__init__(cfg, out_dir, resume, reporter, labels)
        self.device = device
        self.arrays = arrays
        self.epoch_checkpoint_s = epoch_checkpoint_s

    def prepare(self) -> dict[str, Any]:
        d = self.cfg.data
        arrays = self.arrays or load_cifar(d.dataset, d.path, d.labels, d.cache_dir or None)
        if arrays.num_classes != self.cfg.num_classes:
            raise ValueError(
                f"the data has {arrays.num_classes} classes, "
                f"{d.dataset} ({d.labels}) has {self.cfg.num_classes}"
            )
        run = self.context = CifarRun.create(
            self.cfg, self.device, self.out, self.resume, self.reporter, arrays
        )
        run.epoch_checkpoint_s = self.epoch_checkpoint_s
        return {
            "mode": "cifar",
            "config": self.cfg.to_dict(),
            "config_hash": self.cfg.config_hash(),
            "environment": environment(self.cfg, self.device),
            "data": _data_summary(run, arrays),
        }

    def compute(self, stage: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """A CIFAR stage returns its part; its models stay in ``run.models`` for later stages."""
        return super().compute(stage), {}

    def timing_details(self) -> dict[str, Any]:
        per_model: dict[str, float] = {}
        throughput: dict[str, float] = {}
        for stage, models in self.context.models.items():
            trained = [m.record for m in models if not m.cached]
            rec = trained or [m.record for m in models]
            if rec:
                per_model[stage] = float(np.mean([r["train_seconds"] for r in rec]))
                throughput[stage] = float(np.mean([r["images_per_second"] for r in rec]))
        return {"seconds_per_model": per_model, "images_per_second": throughput}


def environment(cfg: CifarConfig, device: torch.device) -> dict[str, Any]:
    env = {
        **host_environment(device),
        "precision": "bfloat16 autocast" if use_bf16(cfg.recipe, device) else "float32",
        "channels_last": cfg.recipe.channels_last,
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
    return env


def _data_summary(run: CifarRun, arrays: CifarArrays) -> dict[str, Any]:
    s = arrays.summary()
    s.update(
        n_train_used=len(run.train_set),
        n_test_used=len(run.test_set),
        train_class_counts=torch.bincount(run.train_set.labels.cpu(), minlength=arrays.num_classes).tolist(),
        test_class_counts=torch.bincount(run.test_set.labels.cpu(), minlength=arrays.num_classes).tolist(),
        normalization={
            "mean": list(run.normalize.mean.flatten().tolist()),
            "std": list(run.normalize.std.flatten().tolist()),
        },
    )
    if run.test_index is not None:
        s["test_indices"] = run.test_index.tolist()
    return s


# --------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------


@implements(CIFAR, "single")
def stage_single(run: CifarRun) -> dict[str, Any]:
    c = run.cfg
    S = c.protocol.seeds
    run.reporter.stage_started("single", S)
    models = []
    for i in range(S):
        seed = derive_seed(c.seed, "single", i, "init")
        t = fit(
            run,
            "single",
            i,
            f"single {i + 1}/{S}",
            {"init": seed},
            lambda seed=seed: new_net(run, seed),
            lambda: LabelLoss(c.recipe.label_smoothing),
            keep_net=True,
        )
        models.append(t)
    run.models["single"] = models
    out = models_json(models, run)
    out["init_seeds"] = [derive_seed(c.seed, "single", i, "init") for i in range(S)]
    return out


def _ensemble_part(run: CifarRun, logits: Tensor) -> dict[str, Any]:
    """Accuracy of the ensemble of all members (S, N, k), both combination rules, and the curve
    of accuracy against ensemble size K (mean over up to 20 member subsets of each size)."""
    how = run.cfg.protocol.ensemble_combine
    y = run.y_test
    acc = accuracy(ens.combine(logits, how), y)
    curve: dict[str, list[float]] = {"K": [], "all": [], "accuracy": []}
    S = logits.shape[0]
    for K in range(1, S + 1):
        subsets = ens.member_subsets(S, K, 20, run.cfg.seed)
        a = float(np.mean([accuracy(ens.combine(logits[list(s)], how), y) for s in subsets]))
        curve["K"].append(K)
        curve["accuracy"].append(a)
        curve["all"].append(1.0 - a)
    return {
        "test_accuracy": [acc],
        "test_error": {"all": [1.0 - acc]},
        "K": S,
        "combine": how,
        "accuracy_by_combine": {h: accuracy(ens.combine(logits, h), y) for h in ("logits", "probs")},
        "curve": curve,
    }


@implements(CIFAR, "ensemble")
def stage_ensemble(run: CifarRun) -> dict[str, Any]:
    logits = torch.stack([m.test_logits for m in run.models["single"]])
    return _ensemble_part(run, logits)


@implements(CIFAR, "training_average")
def stage_training_average(run: CifarRun) -> dict[str, Any]:
    c, p = run.cfg, run.cfg.protocol
    K, G = p.K, p.training_average_models
    run.reporter.stage_started("training_average", G)
    models = []
    for g in range(G):
        seeds = [derive_seed(c.seed, "training_average", g, "member", j, "init") for j in range(K)]

        def build(seeds: list[int] = seeds) -> nn.Module:
            return AverageNet([new_net(run, s) for s in seeds])

        def members(net: nn.Module) -> dict[str, Tensor]:
            sub = predict(net.member_logits, run.test_set, run.normalize, c.recipe)  # (K, N, k)
            return {"sub_network_accuracy": torch.tensor([accuracy(s, run.y_test) for s in sub])}

        t = fit(
            run,
            "training_average",
            g,
            f"average of {K} ({g + 1}/{G})",
            {"K": K, "init": seeds},
            build,
            lambda: LabelLoss(c.recipe.label_smoothing),
            extra=members,
        )
        models.append(t)
    run.models["training_average"] = models
    out = models_json(models, run)
    out["K"] = K
    out["sub_network_accuracy"] = [m.record.get("sub_network_accuracy") for m in models]
    return out


def _teacher(run: CifarRun, members: list[nn.Module]) -> Teacher:
    c = run.cfg
    teacher = Teacher(members, c.protocol.ensemble_combine, c.recipe, run.device)
    if not c.recipe.augments:  # no augmentation: the teacher's logits are fixed, compute them once
        teacher.cache = predict(teacher.logits, run.train_set, run.normalize, c.recipe, tta=0).to(run.device)
    return teacher


def _student_parts(run: CifarRun) -> dict[str, Any]:
    """The KD settings in a student's key; its epochs only where they differ from the recipe's
    (so a student trained as long as its teachers keeps the key it had before ``kd_epochs``)."""
    c, p = run.cfg, run.cfg.protocol
    parts: dict[str, Any] = {"t": p.kd_t, "T": p.kd_temperature}
    if c.student_epochs != c.recipe.epochs:
        parts["epochs"] = c.student_epochs
    return parts


def kd_students(run: CifarRun, indices: Iterable[int]) -> list[Trained]:
    """Train (or load) the KD students ``indices`` of the ensemble of ``run.models["single"]``."""
    c, p = run.cfg, run.cfg.protocol
    singles = run.models["single"]
    M = p.n_kd_students
    teacher_keys = [m.key for m in singles]
    shared: list[Teacher] = []

    def kd_loss() -> LossFn:
        if not shared:  # built when the first student trains (not when every student is loaded)
            shared.append(_teacher(run, [m.net for m in singles]))
        return KDLoss(shared[0], p.kd_t, p.kd_temperature)

    models = []
    for i in indices:
        seed = derive_seed(c.seed, "kd", i, "init")
        parts = {"init": seed, "teachers": teacher_keys, "combine": p.ensemble_combine, **_student_parts(run)}
        t = fit(
            run,
            "kd",
            i,
            f"KD student {i + 1}/{M}",
            parts,
            lambda seed=seed: new_net(run, seed),
            kd_loss,
            epochs=c.student_epochs,
        )
        models.append(t)
    return models


def self_kd_students(run: CifarRun, indices: Iterable[int]) -> list[Trained]:
    """Train (or load) the self-KD students ``indices``, student i taught by single model i."""
    c, p = run.cfg, run.cfg.protocol
    singles = run.models["single"]
    models = []
    for i in indices:
        teacher_model = singles[i]
        seed = derive_seed(c.seed, "self_kd", i, "init")
        parts = {"init": seed, "teacher": teacher_model.key, **_student_parts(run)}
        t = fit(
            run,
            "self_kd",
            i,
            f"self-KD student {i + 1}/{len(singles)}",
            parts,
            lambda seed=seed: new_net(run, seed),
            lambda net=teacher_model.net: KDLoss(_teacher(run, [net]), p.kd_t, p.kd_temperature),
            epochs=c.student_epochs,
        )
        models.append(t)
    return models


@implements(CIFAR, "kd")
def stage_kd(run: CifarRun) -> dict[str, Any]:
    p = run.cfg.protocol
    singles = run.models["single"]
    run.reporter.stage_started("kd", p.n_kd_students)
    models = run.models["kd"] = kd_students(run, range(p.n_kd_students))
    out = models_json(models, run)
    out["teacher"] = {"members": len(singles), "combine": p.ensemble_combine}
    out["t"], out["temperature"] = p.kd_t, p.kd_temperature
    return out


@implements(CIFAR, "self_kd")
def stage_self_kd(run: CifarRun) -> dict[str, Any]:
    p = run.cfg.protocol
    singles = run.models["single"]
    run.reporter.stage_started("self_kd", len(singles))
    models = run.models["self_kd"] = self_kd_students(run, range(len(singles)))
    out = models_json(models, run)
    out["teacher_accuracy"] = [m.record["test_accuracy"] for m in singles]
    out["t"], out["temperature"] = p.kd_t, p.kd_temperature
    logits = torch.stack([m.test_logits for m in models])
    out["ensemble"] = _ensemble_part(run, logits) if len(models) > 1 else None
    return out


@implements(CIFAR, "ensemble_of_kd")
def stage_ensemble_of_kd(run: CifarRun) -> dict[str, Any]:
    logits = torch.stack([m.test_logits for m in run.models["kd"]])
    return _ensemble_part(run, logits)


@implements(CIFAR, "channel_split")
def stage_channel_split(run: CifarRun) -> dict[str, Any]:
    c, p = run.cfg, run.cfg.protocol
    singles = run.models["single"][: p.n_split_seeds]
    layer = p.channel_split_layer
    first: StagedNet = singles[0].net
    last, C = first.cuts[layer], first.cut_channels[layer]
    ns = sorted(set(p.channel_split_n))
    epochs = p.channel_split_epochs or c.recipe.epochs
    run.reporter.stage_started("channel_split", len(ns) * len(singles))
    y = run.y_test
    part: dict[str, Any] = {
        "layer": layer,
        "cut_after_stage": last,
        "channels": C,
        "n": ns,
        "kept_channels": [max(1, C // n) for n in ns],
        "epochs": epochs,
        "original": {
            "test_accuracy": [m.record["test_accuracy"] for m in singles],
            "ensemble_accuracy": accuracy(
                ens.combine(torch.stack([m.test_logits for m in singles]), p.ensemble_combine), y
            ),
        },
        "single": {},
        "ensemble": {},
    }
    trained = []
    for n in ns:
        keep_n = max(1, C // n)
        logits = []
        accs = []
        for s, single in enumerate(singles):
            index = len(trained)
            keep = torch.sort(
                torch.randperm(C, generator=generator(c.seed, "channel_split", n, s, "keep"))[:keep_n]
            ).values
            seed = derive_seed(c.seed, "channel_split", n, s, "init")

            def build(single: Trained = single, keep: Tensor = keep, seed: int = seed) -> nn.Module:
                bottom = copy.deepcopy(single.net)
                return SplitNet(bottom, last, keep, new_net(run, seed, first_in={last + 1: len(keep)}))

            parts = {
                "init": seed,
                "bottom": single.key,
                "layer": layer,
                "n": n,
                "keep": keep.tolist(),
                "epochs": epochs,
            }
            t = fit(
                run,
                "channel_split",
                index,
                f"split 1/{n} of seed {s}",
                parts,
                build,
                lambda: LabelLoss(c.recipe.label_smoothing),
                epochs=epochs,
            )
            trained.append(t)
            logits.append(t.test_logits)
            accs.append(t.record["test_accuracy"])
        part["single"][str(n)] = {
            **accuracy_json(accs),
            "train_seconds": [m.record["train_seconds"] for m in trained[-len(singles) :]],
        }
        part["ensemble"][str(n)] = {
            "test_accuracy": accuracy(ens.combine(torch.stack(logits), p.ensemble_combine), y)
        }
    run.models["channel_split"] = trained
    return part


@implements(CIFAR, "overlap")
def stage_overlap(run: CifarRun) -> dict[str, Any]:
    how = run.cfg.protocol.ensemble_combine

    def stacked(stage: str) -> Tensor | None:
        models = run.models.get(stage)
        return torch.stack([m.test_logits for m in models]) if models else None

    single = stacked("single")
    assert single is not None
    kd = stacked("kd")
    return wrong_set_overlap(
        run.y_test,
        single,
        ens.combine(single, how),
        test_index=run.test_index,
        kd=kd,
        self_kd=stacked("self_kd"),
        ensemble_of_kd=ens.combine(kd, how) if kd is not None else None,
    )
