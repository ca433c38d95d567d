"""The paper's CIFAR protocol (spec §6.1, §10), stage by stage, one checkpoint per trained model.

Stages (:data:`multiview.cifar.config.STAGES`; prerequisites are added):

* ``single``: S models from independent seeds;
* ``ensemble``: the mean of their logits (or probabilities), and its accuracy against size K;
* ``training_average``: K sub-networks trained with one loss on their mean logits;
* ``kd``: fresh students distilled from the ensemble of the S single models;
* ``self_kd``: one fresh student per single model, distilled from it;
* ``ensemble_of_kd``: the ensemble of the KD students;
* ``channel_split``: a trained network's lower stages frozen, 1/n of the channels at the cut
  kept, a new network trained from there on, n = 1, 2, 4, 8 (single and ensemble);
* ``overlap``: which test images which models get wrong (:mod:`multiview.cifar.overlap`).

Every model's weights start from ``derive_seed(seed, stage, index, "init")`` and its data order
and augmentation from ``derive_seed(seed, stage, index, "data")``. Each trained model is saved
to ``<out>/models/<stage>/<index>.pt`` with a key that hashes what determines it (data, network,
recipe, seeds, teachers); ``resume`` loads a model whose key matches instead of training it.
``results.json`` is rewritten (atomically) after every stage.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from multiview import ensemble as ens
from multiview import results, stages
from multiview.cifar.config import STAGES, CifarConfig
from multiview.cifar.data import CifarArrays, balanced_subset, load_cifar
from multiview.cifar.nets import AverageNet, SplitNet, StagedNet, build_net, whitening_filters
from multiview.cifar.overlap import overlap_report
from multiview.cifar.pipeline import DeviceSet, Normalizer
from multiview.cifar.train import (
    KDLoss,
    LabelLoss,
    LossFn,
    Teacher,
    TrainStats,
    accuracy,
    predict,
    prepare,
    train_model,
    use_bf16,
)
from multiview.results import SCHEMA_VERSION, atomic_write_text, load_tensors, save_tensors, write_json
from multiview.seeding import derive_seed, generator

REQUIRES: dict[str, tuple[str, ...]] = {
    "single": (),
    "ensemble": ("single",),
    "training_average": (),
    "kd": ("single",),
    "self_kd": ("single",),
    "ensemble_of_kd": ("kd",),
    "channel_split": ("single",),
    "overlap": ("single", "ensemble"),
}


class Reporter:
    """Progress of a run; silent by default (the command line shows rich progress bars)."""

    def stage_started(self, stage: str, n_models: int) -> None: ...

    def model_started(self, stage: str, index: int, label: str) -> None: ...

    def model_progress(
        self, stage: str, index: int, step: int, total: int, images_per_second: float
    ) -> None: ...

    def model_finished(
        self, stage: str, index: int, accuracy: float, seconds: float, cached: bool
    ) -> None: ...

    def stage_finished(self, stage: str, seconds: float) -> None: ...


def resolve_stages(requested: tuple[str, ...] | list[str]) -> list[str]:
    """The requested stages and their prerequisites, in protocol order."""
    return stages.resolve_stages(requested, REQUIRES, STAGES)


@dataclass
class Trained:
    """A trained (or loaded) model with its test logits (N, k) and training record; ``net`` is
    kept only where later stages need it (the single models: teachers and channel-split bottoms)."""

    stage: str
    index: int
    net: nn.Module | None
    test_logits: Tensor
    record: dict[str, Any]
    key: str
    cached: bool


@dataclass
class CifarRun:
    """Shared state of one protocol run."""

    cfg: CifarConfig
    device: torch.device
    out: Path | None
    resume: bool
    reporter: Reporter
    train_set: DeviceSet
    test_set: DeviceSet
    normalize: Normalizer
    whitening: Tensor | None
    data_identity: dict[str, Any]
    test_index: Tensor | None
    models: dict[str, list[Trained]] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    warmed_up: bool = False

    @property
    def y_test(self) -> Tensor:
        return self.test_set.labels.cpu()


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def run_cifar(
    cfg: CifarConfig,
    device: str | torch.device = "cpu",
    out_dir: str | Path | None = None,
    resume: bool = False,
    reporter: Reporter | None = None,
    arrays: CifarArrays | None = None,
) -> dict[str, Any]:
    """Run the configured stages and return the results (the content of ``results.json``).

    ``arrays`` skips reading the data (tests and notebooks that already hold it). With
    ``out_dir``: ``config.toml``, ``results.json`` after each stage, one checkpoint per model.
    """
    cfg.validate()
    device = torch.device(device)
    reporter = reporter or Reporter()
    out = Path(out_dir) if out_dir is not None else None
    t0 = time.perf_counter()
    d = cfg.data
    if arrays is None:
        arrays = load_cifar(d.dataset, d.path, d.labels, d.cache_dir or None)
    if arrays.num_classes != cfg.num_classes:
        raise ValueError(
            f"the data has {arrays.num_classes} classes, {d.dataset} ({d.labels}) has {cfg.num_classes}"
        )
    run = _make_run(cfg, device, out, resume, reporter, arrays)
    run.timing["data"] = time.perf_counter() - t0
    run.results = {
        "schema": SCHEMA_VERSION,
        "mode": "cifar",
        "config": cfg.to_dict(),
        "config_hash": cfg.config_hash(),
        "environment": environment(cfg, device),
        "data": _data_summary(run, arrays),
    }
    if out is not None:
        atomic_write_text(out / "config.toml", cfg.to_toml())
    for stage in resolve_stages(cfg.protocol.stages):
        t = time.perf_counter()
        run.results[stage] = STAGE_FUNCTIONS[stage](run)
        run.timing[stage] = time.perf_counter() - t
        reporter.stage_finished(stage, run.timing[stage])
        _finish(run, t0, complete=False)
    return _finish(run, t0, complete=True)


def _make_run(
    cfg: CifarConfig,
    device: torch.device,
    out: Path | None,
    resume: bool,
    reporter: Reporter,
    arrays: CifarArrays,
) -> CifarRun:
    d, K = cfg.data, cfg.num_classes
    train_idx = balanced_subset(arrays.train_y, d.train_subset, K, d.subset_seed, "train")
    test_idx = balanced_subset(arrays.test_y, d.test_subset, K, d.subset_seed, "test")
    normalize = Normalizer(arrays.mean, arrays.std, device, cfg.recipe.channels_last)
    train_set = DeviceSet.from_arrays(arrays.train_x[train_idx], arrays.train_y[train_idx], device)
    test_set = DeviceSet.from_arrays(arrays.test_x[test_idx], arrays.test_y[test_idx], device)
    whitening = None
    if cfg.model.arch == "fast":
        whitening = whitening_filters(normalize(train_set.images[:5000]).float())
    identity = {
        "dataset": d.dataset,
        "labels": d.labels,
        "fingerprint": arrays.fingerprint,
        "train_subset": d.train_subset,
        "test_subset": d.test_subset,
        "subset_seed": d.subset_seed,
    }
    subset = d.test_subset > 0 and d.test_subset < len(arrays.test_y)
    return CifarRun(
        cfg,
        device,
        out,
        resume,
        reporter,
        train_set,
        test_set,
        normalize,
        whitening,
        identity,
        torch.from_numpy(test_idx) if subset else None,
    )


def environment(cfg: CifarConfig, device: torch.device) -> dict[str, Any]:
    env = {
        "device": str(device),
        "precision": "bfloat16 autocast" if use_bf16(cfg.recipe, device) else "float32",
        "channels_last": cfg.recipe.channels_last,
        **results.host_environment(device),
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


def _finish(run: CifarRun, t0: float, complete: bool) -> dict[str, Any]:
    per_model: dict[str, float] = {}
    throughput: dict[str, float] = {}
    for stage, models in run.models.items():
        trained = [m.record for m in models if not m.cached]
        rec = trained or [m.record for m in models]
        if rec:
            per_model[stage] = float(np.mean([r["train_seconds"] for r in rec]))
            throughput[stage] = float(np.mean([r["images_per_second"] for r in rec]))
    run.results["timing"] = {
        **run.timing,
        "seconds_per_model": per_model,
        "images_per_second": throughput,
        "total": time.perf_counter() - t0,
    }
    run.results["complete"] = complete
    if run.out is not None:
        write_json(run.out / "results.json", run.results)
    return run.results


# --------------------------------------------------------------------------------------------
# Training a model, with its checkpoint
# --------------------------------------------------------------------------------------------


def model_key(parts: dict[str, Any]) -> str:
    """A 16-hex-digit hash of what determines a trained model."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _base_identity(run: CifarRun) -> dict[str, Any]:
    c = run.cfg
    return {
        "data": run.data_identity,
        "model": c.to_dict()["model"],
        "recipe": c.to_dict()["recipe"],
        "seed": c.seed,
    }


def _new_net(run: CifarRun, init_seed: int, first_in: dict[int, int] | None = None) -> StagedNet:
    c = run.cfg
    return build_net(
        c.model.arch,
        c.num_classes,
        init_seed,
        fast_width=c.model.fast_width,
        whitening=run.whitening,
        first_in=first_in,
    )


def _checkpoint(run: CifarRun, stage: str, index: int) -> Path | None:
    return None if run.out is None else run.out / "models" / stage / f"{index:03d}.pt"


def _fit(
    run: CifarRun,
    stage: str,
    index: int,
    label: str,
    key_parts: dict[str, Any],
    build: Callable[[], nn.Module],
    loss: Callable[[], LossFn],
    epochs: float | None = None,
    extra: Callable[[nn.Module], dict[str, Tensor]] | None = None,
    keep_net: bool = False,
) -> Trained:
    """Train the model ``build()`` with ``loss()`` (or load it from its checkpoint) and evaluate it.

    ``extra(net)`` returns more test tensors to keep (e.g. each sub-network's logits).
    ``keep_net``: return the network (else only its logits and record, to free memory).
    """
    c = run.cfg
    key = model_key({**_base_identity(run), **key_parts, "stage": stage, "index": index})
    ckpt = _checkpoint(run, stage, index)
    run.reporter.model_started(stage, index, label)
    if run.resume and ckpt is not None and ckpt.exists():
        saved = load_tensors(ckpt)
        if saved.get("key") == key:
            net = None
            if keep_net:
                net = prepare(build(), c.recipe, run.device)
                net.load_state_dict(saved["state_dict"])
                net.eval()
            record = saved["record"]
            run.reporter.model_finished(
                stage, index, record["test_accuracy"], record["train_seconds"], cached=True
            )
            return Trained(stage, index, net, saved["test_logits"], record, key, cached=True)
    net = prepare(build(), c.recipe, run.device)
    _warm_up(run)
    gen = generator(c.seed, stage, index, "data")

    def progress(step: int, total: int, ips: float) -> None:
        run.reporter.model_progress(stage, index, step, total, ips)

    stats = train_model(
        net, run.train_set, run.normalize, c.recipe, gen, loss(), epochs=epochs, progress=progress
    )
    test_logits = predict(net, run.test_set, run.normalize, c.recipe)
    record = _record(stats, accuracy(test_logits, run.y_test))
    extras = extra(net) if extra is not None else {}
    record.update({k: v.tolist() if isinstance(v, Tensor) else v for k, v in extras.items()})
    if ckpt is not None:
        save_tensors(
            ckpt,
            {
                "key": key,
                "state_dict": net.state_dict(),
                "test_logits": test_logits,
                "record": record,
                "config": c.to_dict(),
            },
        )
    run.reporter.model_finished(stage, index, record["test_accuracy"], stats.seconds, cached=False)
    return Trained(stage, index, net if keep_net else None, test_logits, record, key, cached=False)


def _record(stats: TrainStats, acc: float) -> dict[str, Any]:
    return {
        "test_accuracy": acc,
        "train_seconds": stats.seconds,
        "images_per_second": stats.images_per_second,
        "steps": stats.steps,
        "epochs": stats.epochs,
        "final_train_loss": stats.final_loss,
        "train_accuracy": stats.train_accuracy,
    }


def _warm_up(run: CifarRun) -> None:
    """Before the first timed model: ``warmup_steps`` optimizer steps of a throw-away model."""
    steps = run.cfg.protocol.warmup_steps
    if run.warmed_up or steps == 0:
        return
    run.warmed_up = True
    c = run.cfg
    net = prepare(_new_net(run, derive_seed(c.seed, "warmup", "init")), c.recipe, run.device)
    gen = generator(c.seed, "warmup", "data")
    train_model(
        net, run.train_set, run.normalize, c.recipe, gen, LabelLoss(c.recipe.label_smoothing), max_steps=steps
    )
    predict(net, run.test_set, run.normalize, c.recipe)


def _models_json(models: list[Trained], run: CifarRun) -> dict[str, Any]:
    """The per-model lists every method reports."""
    recs = [m.record for m in models]
    acc = [r["test_accuracy"] for r in recs]
    out: dict[str, Any] = {
        "test_accuracy": acc,
        "test_error": {"all": [1.0 - a for a in acc]},
        "accuracy_mean": float(np.mean(acc)),
        "accuracy_std": float(np.std(acc, ddof=1)) if len(acc) > 1 else 0.0,
    }
    for key in (
        "train_seconds",
        "images_per_second",
        "steps",
        "epochs",
        "final_train_loss",
        "train_accuracy",
    ):
        out[key] = [r[key] for r in recs]
    out["cached"] = [m.cached for m in models]
    out["checkpoints"] = [
        f"models/{m.stage}/{m.index:03d}.pt" if run.out is not None else None for m in models
    ]
    return out


# --------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------


def stage_single(run: CifarRun) -> dict[str, Any]:
    c = run.cfg
    S = c.protocol.seeds
    run.reporter.stage_started("single", S)
    models = []
    for i in range(S):
        seed = derive_seed(c.seed, "single", i, "init")
        t = _fit(
            run,
            "single",
            i,
            f"single {i + 1}/{S}",
            {"init": seed},
            lambda seed=seed: _new_net(run, seed),
            lambda: LabelLoss(c.recipe.label_smoothing),
            keep_net=True,
        )
        models.append(t)
    run.models["single"] = models
    out = _models_json(models, run)
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


def stage_ensemble(run: CifarRun) -> dict[str, Any]:
    logits = torch.stack([m.test_logits for m in run.models["single"]])
    return _ensemble_part(run, logits)


def stage_training_average(run: CifarRun) -> dict[str, Any]:
    c, p = run.cfg, run.cfg.protocol
    K, G = p.K, p.training_average_models
    run.reporter.stage_started("training_average", G)
    models = []
    for g in range(G):
        seeds = [derive_seed(c.seed, "training_average", g, "member", j, "init") for j in range(K)]

        def build(seeds: list[int] = seeds) -> nn.Module:
            return AverageNet([_new_net(run, s) for s in seeds])

        def members(net: nn.Module) -> dict[str, Tensor]:
            sub = predict(net.member_logits, run.test_set, run.normalize, c.recipe)  # (K, N, k)
            return {"sub_network_accuracy": torch.tensor([accuracy(s, run.y_test) for s in sub])}

        t = _fit(
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
    out = _models_json(models, run)
    out["K"] = K
    out["sub_network_accuracy"] = [m.record.get("sub_network_accuracy") for m in models]
    return out


def _teacher(run: CifarRun, members: list[nn.Module]) -> Teacher:
    c = run.cfg
    teacher = Teacher(members, c.protocol.ensemble_combine, c.recipe, run.device)
    if not c.recipe.augments:  # no augmentation: the teacher's logits are fixed, compute them once
        cache = predict(teacher_forward(teacher), run.train_set, run.normalize, c.recipe, tta=0)
        teacher.cache = cache.to(run.device)
    return teacher


def teacher_forward(teacher: Teacher) -> Callable[[Tensor], Tensor]:
    def forward(x: Tensor) -> Tensor:
        logits = torch.stack([m(x).float() for m in teacher.members])
        return ens.combine(logits, teacher.how) if len(teacher.members) > 1 else logits[0]

    return forward


def stage_kd(run: CifarRun) -> dict[str, Any]:
    c, p = run.cfg, run.cfg.protocol
    singles = run.models["single"]
    M = p.n_kd_students
    run.reporter.stage_started("kd", M)
    teacher_keys = [m.key for m in singles]
    shared: list[Teacher] = []

    def kd_loss() -> LossFn:
        if not shared:  # built when the first student trains (not when every student is loaded)
            shared.append(_teacher(run, [m.net for m in singles]))
        return KDLoss(shared[0], p.kd_t, p.kd_temperature)

    models = []
    for i in range(M):
        seed = derive_seed(c.seed, "kd", i, "init")
        parts = {
            "init": seed,
            "teachers": teacher_keys,
            "combine": p.ensemble_combine,
            "t": p.kd_t,
            "T": p.kd_temperature,
        }
        t = _fit(
            run,
            "kd",
            i,
            f"KD student {i + 1}/{M}",
            parts,
            lambda seed=seed: _new_net(run, seed),
            kd_loss,
        )
        models.append(t)
    run.models["kd"] = models
    out = _models_json(models, run)
    out["teacher"] = {"members": len(singles), "combine": p.ensemble_combine}
    out["t"], out["temperature"] = p.kd_t, p.kd_temperature
    return out


def stage_self_kd(run: CifarRun) -> dict[str, Any]:
    c, p = run.cfg, run.cfg.protocol
    singles = run.models["single"]
    run.reporter.stage_started("self_kd", len(singles))
    models = []
    for i, teacher_model in enumerate(singles):
        seed = derive_seed(c.seed, "self_kd", i, "init")
        parts = {"init": seed, "teacher": teacher_model.key, "t": p.kd_t, "T": p.kd_temperature}
        t = _fit(
            run,
            "self_kd",
            i,
            f"self-KD student {i + 1}/{len(singles)}",
            parts,
            lambda seed=seed: _new_net(run, seed),
            lambda net=teacher_model.net: KDLoss(_teacher(run, [net]), p.kd_t, p.kd_temperature),
        )
        models.append(t)
    run.models["self_kd"] = models
    out = _models_json(models, run)
    out["teacher_accuracy"] = [m.record["test_accuracy"] for m in singles]
    out["t"], out["temperature"] = p.kd_t, p.kd_temperature
    logits = torch.stack([m.test_logits for m in models])
    out["ensemble"] = _ensemble_part(run, logits) if len(models) > 1 else None
    return out


def stage_ensemble_of_kd(run: CifarRun) -> dict[str, Any]:
    logits = torch.stack([m.test_logits for m in run.models["kd"]])
    return _ensemble_part(run, logits)


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
                return SplitNet(bottom, last, keep, _new_net(run, seed, first_in={last + 1: len(keep)}))

            parts = {
                "init": seed,
                "bottom": single.key,
                "layer": layer,
                "n": n,
                "keep": keep.tolist(),
                "epochs": epochs,
            }
            t = _fit(
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
            "test_accuracy": accs,
            "test_error": {"all": [1.0 - a for a in accs]},
            "accuracy_mean": float(np.mean(accs)),
            "accuracy_std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
            "train_seconds": [m.record["train_seconds"] for m in trained[-len(singles) :]],
        }
        part["ensemble"][str(n)] = {
            "test_accuracy": accuracy(ens.combine(torch.stack(logits), p.ensemble_combine), y)
        }
    run.models["channel_split"] = trained
    return part


def stage_overlap(run: CifarRun) -> dict[str, Any]:
    how = run.cfg.protocol.ensemble_combine

    def stacked(stage: str) -> Tensor | None:
        models = run.models.get(stage)
        return torch.stack([m.test_logits for m in models]) if models else None

    single = stacked("single")
    assert single is not None
    kd = stacked("kd")
    return overlap_report(
        run.y_test,
        single,
        ens.combine(single, how),
        test_index=run.test_index,
        kd=kd,
        self_kd=stacked("self_kd"),
        ensemble_of_kd=ens.combine(kd, how) if kd is not None else None,
    )


STAGE_FUNCTIONS: dict[str, Callable[[CifarRun], dict[str, Any]]] = {
    "single": stage_single,
    "ensemble": stage_ensemble,
    "training_average": stage_training_average,
    "kd": stage_kd,
    "self_kd": stage_self_kd,
    "ensemble_of_kd": stage_ensemble_of_kd,
    "channel_split": stage_channel_split,
    "overlap": stage_overlap,
}
