"""Training recipes: the named defaults, the optimizer and the learning-rate schedule.

* ``paper``: the WideResNet recipe of Zagoruyko & Komodakis, the spec's suggested default for the
  paper's runs (spec §6.3): SGD, momentum 0.9, Nesterov, lr 0.1, weight decay 5e-4, batch 128,
  200 epochs, lr × 0.2 at epochs 60 / 120 / 160 (``--set schedule=cosine`` for cosine), random
  crop after 4 pixels of zero padding, horizontal flip, no label smoothing.
* ``fast``: for the default network, the airbench94 recipe rewritten for a mean loss: Nesterov
  SGD with momentum 0.85 at lr 1.5 per 1024 examples (scaled linearly with the batch size),
  coupled weight decay 1.33e-3, BatchNorm biases at 64 × the rate, a triangular schedule
  (0.2 → 1 at 23 % → 0.07), label smoothing 0.2, 2-pixel reflect-padded crops and flips, flip +
  translate test-time augmentation, 10 epochs of batch 1024.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from multiview.cifar.config import ConfigError, Recipe

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


def param_groups(net: nn.Module, recipe: Recipe) -> list[dict]:
    """Two groups: BatchNorm biases (``bias_lr_scale`` × the rate, weight decay divided by it so
    the decay per step is the same) and every other trainable parameter."""
    lr = recipe.effective_lr()
    norm_bias_ids = {
        id(m.bias)
        for m in net.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.bias is not None
    }
    norm_biases = [p for p in net.parameters() if p.requires_grad and id(p) in norm_bias_ids]
    others = [p for p in net.parameters() if p.requires_grad and id(p) not in norm_bias_ids]
    groups = [{"params": others, "lr": lr, "weight_decay": recipe.weight_decay, "base_lr": lr}]
    if norm_biases:
        scale = recipe.bias_lr_scale
        groups.append(
            {
                "params": norm_biases,
                "lr": lr * scale,
                "weight_decay": recipe.weight_decay / scale,
                "base_lr": lr * scale,
            }
        )
    return groups


def make_optimizer(net: nn.Module, recipe: Recipe) -> torch.optim.SGD:
    return torch.optim.SGD(
        param_groups(net, recipe),
        lr=recipe.effective_lr(),
        momentum=recipe.momentum,
        nesterov=recipe.nesterov,
    )


def set_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
