"""Training recipes as data: the recipe section of a CIFAR config, the named recipes, the schedule.

* ``paper``: the WideResNet recipe of Zagoruyko & Komodakis, the spec's suggested default for the
  paper's runs (spec §6.3): SGD, momentum 0.9, Nesterov, lr 0.1, weight decay 5e-4, batch 128,
  200 epochs, lr × 0.2 at epochs 60 / 120 / 160 (``--set schedule=cosine`` for cosine), random
  crop after 4 pixels of zero padding, horizontal flip, no label smoothing.
* ``fast``: for the default network, the airbench94 recipe rewritten for a mean loss: Nesterov
  SGD with momentum 0.85 at lr 1.5 per 1024 examples (scaled linearly with the batch size),
  coupled weight decay 1.33e-3, BatchNorm biases at 64 × the rate, a triangular schedule
  (0.2 → 1 at 23 % → 0.07), label smoothing 0.2, 2-pixel reflect-padded crops and flips, flip +
  translate test-time augmentation, 10 epochs of batch 1024.

This module imports no torch: building a config never does (the optimizer is built in
:mod:`multiview.cifar.train`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

from multiview.settings import (
    Boolean,
    ConfigError,
    Constraint,
    Integer,
    NonEmpty,
    Number,
    OneOf,
    Positive,
    Section,
)


@dataclass
class Recipe(Section):
    """How one model is trained (every value is saved with the results).

    SGD with ``momentum`` (``nesterov``), learning rate ``lr`` for mean losses over a batch of
    ``batch_size``; with ``lr_reference_batch`` > 0 the rate is ``lr·batch_size/lr_reference_batch``
    (so changing the batch size keeps the per-example step). Coupled ``weight_decay``;
    BatchNorm biases get ``bias_lr_scale`` × the rate and ``weight_decay / bias_lr_scale`` (the same
    decay per step). Schedule per optimizer step over ``epochs`` (fractional allowed): ``step``
    multiplies by ``lr_decay`` at each fraction of training in ``milestones``; ``cosine`` decays to
    0; ``triangle`` rises linearly from ``lr_start`` × to 1 × at fraction ``lr_peak`` and falls to
    ``lr_end`` ×; ``constant``. ``warmup_epochs`` (step/cosine) ramps up linearly first.
    Cross-entropy with ``label_smoothing`` (single models and training the average; KD students use
    the KD loss). Augmentation: random crop after ``crop_padding`` pixels of ``pad_mode`` padding,
    horizontal ``flip``. ``tta``: test-time augmentation, 0 none, 1 flip, 2 flip and one-pixel
    translations. ``whiten_bias_epochs``: the fast network trains its whitening layer's bias only
    for that many epochs. ``precision``: ``auto`` (bf16 autocast on CUDA, float32 on CPU),
    ``float32`` or ``bfloat16``; ``channels_last`` memory format.
    """

    name: str = "fast"
    epochs: float = 10.0
    batch_size: int = 1024
    lr: float = 1.5
    lr_reference_batch: int = 1024
    momentum: float = 0.85
    nesterov: bool = True
    weight_decay: float = 1.33e-3
    bias_lr_scale: float = 64.0
    schedule: str = "triangle"
    milestones: tuple[float, ...] = (0.3, 0.6, 0.8)
    lr_decay: float = 0.2
    warmup_epochs: float = 0.0
    lr_start: float = 0.2
    lr_peak: float = 0.23
    lr_end: float = 0.07
    label_smoothing: float = 0.2
    crop_padding: int = 2
    pad_mode: str = "reflect"
    flip: bool = True
    tta: int = 2
    whiten_bias_epochs: float = 3.0
    eval_batch_size: int = 1000
    precision: str = "auto"
    channels_last: bool = True

    section: ClassVar[str] = "recipe"
    constraints: ClassVar[dict[str, Constraint]] = {
        "name": NonEmpty(),
        "epochs": Positive,
        "batch_size": Integer(1),
        "lr": Positive,
        "lr_reference_batch": Integer(0),
        "momentum": Number(0.0, 1.0),
        "nesterov": Boolean(),
        "weight_decay": Number(),
        "bias_lr_scale": Positive,
        "schedule": OneOf(("step", "cosine", "triangle", "constant")),
        "lr_decay": Number(0.0, 1.0, open_low=True),
        "warmup_epochs": Number(0.0, lambda r: r.epochs),
        "lr_start": Number(),
        "lr_peak": Number(0.0, 1.0),
        "lr_end": Number(),
        "label_smoothing": Number(0.0, 1.0),
        "crop_padding": Integer(0),
        "pad_mode": OneOf(("zeros", "reflect")),
        "flip": Boolean(),
        "tta": OneOf((0, 1, 2)),
        "whiten_bias_epochs": Number(),
        "eval_batch_size": Integer(1),
        "precision": OneOf(("auto", "float32", "bfloat16")),
        "channels_last": Boolean(),
    }

    @property
    def augments(self) -> bool:
        return self.crop_padding > 0 or self.flip

    def effective_lr(self) -> float:
        if self.lr_reference_batch > 0:
            return self.lr * self.batch_size / self.lr_reference_batch
        return self.lr

    def check(self) -> None:
        if self.momentum >= 1.0:
            raise ConfigError(f"recipe.momentum = {self.momentum}: must be below 1")
        if self.nesterov and self.momentum == 0:
            raise ConfigError("recipe.nesterov = true needs recipe.momentum > 0")
        if any(not (0.0 < m <= 1.0) for m in self.milestones):
            raise ConfigError(
                f"recipe.milestones = {list(self.milestones)}: fractions of training in (0, 1], "
                "e.g. [0.3, 0.6, 0.8] for epochs 60/120/160 of 200"
            )
        if list(self.milestones) != sorted(self.milestones):
            raise ConfigError(f"recipe.milestones = {list(self.milestones)}: must be increasing")
        if self.label_smoothing >= 1.0:
            raise ConfigError(f"recipe.label_smoothing = {self.label_smoothing}: must be below 1")
        if self.crop_padding > 16:
            raise ConfigError(f"recipe.crop_padding = {self.crop_padding}: at most 16 pixels")


RECIPES: dict[str, Recipe] = {
    "fast": Recipe(),
    "paper": Recipe(
        name="paper",
        epochs=200.0,
        batch_size=128,
        lr=0.1,
        lr_reference_batch=0,
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        bias_lr_scale=1.0,
        schedule="step",
        milestones=(0.3, 0.6, 0.8),
        lr_decay=0.2,
        warmup_epochs=0.0,
        label_smoothing=0.0,
        crop_padding=4,
        pad_mode="zeros",
        flip=True,
        tta=0,
        whiten_bias_epochs=3.0,
        eval_batch_size=500,
    ),
}


def recipe_named(name: str) -> Recipe:
    """A fresh copy of the named recipe."""
    if name not in RECIPES:
        raise ConfigError(f"recipe {name!r} is unknown; choose one of {', '.join(RECIPES)}")
    return dataclasses.replace(RECIPES[name])


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Batches per epoch: full batches only (the last partial one is dropped), or one batch of
    everything when the training set is smaller than a batch."""
    return max(1, n_train // batch_size)


def total_steps(recipe: Recipe, n_train: int, epochs: float | None = None) -> int:
    epochs = recipe.epochs if epochs is None else epochs
    return max(1, math.ceil(epochs * steps_per_epoch(n_train, recipe.batch_size)))


def lr_factor(step: int, total: int, recipe: Recipe, per_epoch: int) -> float:
    """The schedule's multiplier of the base rate at optimizer step ``step`` of ``total``."""
    frac = step / max(1, total)
    if recipe.schedule == "triangle":
        peak = recipe.lr_peak
        if frac < peak:
            return recipe.lr_start + (1.0 - recipe.lr_start) * frac / peak
        return 1.0 + (recipe.lr_end - 1.0) * (frac - peak) / max(1e-12, 1.0 - peak)
    warm = recipe.warmup_epochs * per_epoch
    if warm > 0 and step < warm:
        return (step + 1) / warm
    if recipe.schedule == "constant":
        return 1.0
    if recipe.schedule == "cosine":
        start = min(warm, total - 1) if warm > 0 else 0
        return 0.5 * (1.0 + math.cos(math.pi * (step - start) / max(1, total - start)))
    return recipe.lr_decay ** sum(frac >= m for m in recipe.milestones)
