"""Fitting one CIFAR model: train it, or load it from its checkpoint when its key matches.

Every model of the CIFAR protocol is trained by :func:`fit`: its weights start from
``derive_seed(seed, stage, index, "init")`` and its data order and augmentation from
``derive_seed(seed, stage, index, "data")``. It is saved to ``<out>/models/<stage>/<index>.pt``
with a key (:func:`model_key`) that hashes what determines it (data, network, recipe, seeds,
teachers); a resumed run loads a model whose key matches instead of training it.

While a model trains, its state after an epoch (weights, optimizer and momentum, the schedule's
step, the data stream's generator: :func:`multiview.cifar.train.training_state`) is saved to
``<out>/models/<stage>/<index>.partial.pt`` at most every ``run.epoch_checkpoint_s`` seconds; a
resumed run continues an interrupted model from there, and ends with the same model as an
uninterrupted run. The file is removed when the model is saved.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor, nn

from multiview.cifar.nets import StagedNet, build_net
from multiview.cifar.run import CifarRun, Trained
from multiview.cifar.train import LabelLoss, LossFn, TrainStats, accuracy, predict, prepare, train_model
from multiview.driver import load_tensors, save_tensors
from multiview.files import digest
from multiview.seeding import derive_seed, generator


def model_key(parts: dict[str, Any]) -> str:
    """A 16-hex-digit hash of what determines a trained model."""
    return digest(parts, compact=False)


def base_identity(run: CifarRun) -> dict[str, Any]:
    """What every model of a run shares: the data, the network, the recipe, the master seed."""
    c = run.cfg
    return {
        "data": run.data_identity,
        "model": c.to_dict()["model"],
        "recipe": c.to_dict()["recipe"],
        "seed": c.seed,
    }


def new_net(run: CifarRun, init_seed: int, first_in: dict[int, int] | None = None) -> StagedNet:
    """A fresh network of the run's architecture, initialized from ``init_seed``."""
    c = run.cfg
    return build_net(
        c.model.arch,
        c.num_classes,
        init_seed,
        fast_width=c.model.fast_width,
        whitening=run.whitening,
        first_in=first_in,
    )


def checkpoint_path(run: CifarRun, stage: str, index: int) -> Path | None:
    return None if run.out is None else run.out / "models" / stage / f"{index:03d}.pt"


def epoch_checkpoint_path(checkpoint: Path) -> Path:
    """Where a model in training keeps its state after its last saved epoch."""
    return checkpoint.with_name(checkpoint.stem + ".partial.pt")


def fit(
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
    key = model_key({**base_identity(run), **key_parts, "stage": stage, "index": index})
    ckpt = checkpoint_path(run, stage, index)
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
    warm_up(run)
    gen = generator(c.seed, stage, index, "data")
    partial = epoch_checkpoint_path(ckpt) if ckpt is not None else None
    resume = None
    if run.resume and partial is not None and partial.exists():
        saved = load_tensors(partial)
        resume = saved["state"] if saved.get("key") == key else None
    last_saved = time.monotonic()

    def progress(step: int, total: int, ips: float) -> None:
        run.reporter.model_progress(stage, index, step, total, ips)

    def on_epoch(state: dict[str, Any]) -> None:
        nonlocal last_saved
        if partial is not None and time.monotonic() - last_saved >= run.epoch_checkpoint_s:
            save_tensors(partial, {"key": key, "state": state})
            last_saved = time.monotonic()

    stats = train_model(
        net,
        run.train_set,
        run.normalize,
        c.recipe,
        gen,
        loss(),
        epochs=epochs,
        progress=progress,
        resume=resume,
        on_epoch=on_epoch if partial is not None else None,
    )
    test_logits = predict(net, run.test_set, run.normalize, c.recipe)
    record = training_record(stats, accuracy(test_logits, run.y_test))
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
        if partial is not None:
            partial.unlink(missing_ok=True)
    run.reporter.model_finished(stage, index, record["test_accuracy"], stats.seconds, cached=False)
    return Trained(stage, index, net if keep_net else None, test_logits, record, key, cached=False)


def training_record(stats: TrainStats, acc: float) -> dict[str, Any]:
    return {
        "test_accuracy": acc,
        "train_seconds": stats.seconds,
        "images_per_second": stats.images_per_second,
        "steps": stats.steps,
        "epochs": stats.epochs,
        "final_train_loss": stats.final_loss,
        "train_accuracy": stats.train_accuracy,
    }


def warm_up(run: CifarRun) -> None:
    """Before the first timed model: ``warmup_steps`` optimizer steps of a throw-away model."""
    steps = run.cfg.protocol.warmup_steps
    if run.warmed_up or steps == 0:
        return
    run.warmed_up = True
    c = run.cfg
    net = prepare(new_net(run, derive_seed(c.seed, "warmup", "init")), c.recipe, run.device)
    gen = generator(c.seed, "warmup", "data")
    train_model(
        net, run.train_set, run.normalize, c.recipe, gen, LabelLoss(c.recipe.label_smoothing), max_steps=steps
    )
    predict(net, run.test_set, run.normalize, c.recipe)


def accuracy_json(acc: list[float]) -> dict[str, Any]:
    """Test accuracy per model, its error, mean and sample standard deviation."""
    return {
        "test_accuracy": acc,
        "test_error": {"all": [1.0 - a for a in acc]},
        "accuracy_mean": float(np.mean(acc)),
        "accuracy_std": float(np.std(acc, ddof=1)) if len(acc) > 1 else 0.0,
    }


def models_json(models: list[Trained], run: CifarRun) -> dict[str, Any]:
    """The per-model lists every method reports."""
    recs = [m.record for m in models]
    out = accuracy_json([r["test_accuracy"] for r in recs])
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
