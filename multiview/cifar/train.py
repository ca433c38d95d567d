"""Training one CIFAR model under a recipe, against labels or a teacher, and evaluating it.

One loop serves every model of the protocol: a single model (cross-entropy, with the recipe's
label smoothing), K sub-networks trained as their average (the same loss on their mean logits;
the model is an :class:`~multiview.cifar.nets.AverageNet`), and KD / self-KD students (the
practical loss t·CE + (1 − t)·T²·H(teacher, student) of :func:`multiview.losses.practical_kd_loss`,
divided by the batch size). The teacher's logits for a batch come from one no-grad pass of its
members over that augmented batch, or from a cache over the training set when the recipe does
not augment. On CUDA the loop runs under bf16 autocast with channels-last tensors and is timed
with CUDA events; on the CPU it runs in float32 with the same code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from multiview import ensemble
from multiview.cifar.pipeline import DeviceSet, Normalizer, draw_epoch, epoch_batches, tta_views
from multiview.cifar.recipes import Recipe, lr_factor, steps_per_epoch, total_steps
from multiview.losses import practical_kd_loss

ProgressFn = Callable[[int, int, float], None]  # (steps done, total steps, images per second)
EpochFn = Callable[[dict[str, Any]], None]  # called with the training state after each epoch


@dataclass
class TrainStats:
    """What training one model did: wall time of the optimizer steps (``seconds``), throughput,
    steps, epochs, and the mean loss and accuracy over the last epoch's (augmented) batches."""

    seconds: float
    images_per_second: float
    steps: int
    epochs: float
    final_loss: float
    train_accuracy: float


def use_bf16(recipe: Recipe, device: torch.device) -> bool:
    return recipe.precision == "bfloat16" or (recipe.precision == "auto" and device.type == "cuda")


def autocast(recipe: Recipe, device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16(recipe, device))


def prepare(net: nn.Module, recipe: Recipe, device: torch.device) -> nn.Module:
    """Move to the device, channels-last if the recipe says so."""
    net = net.to(device)
    return net.to(memory_format=torch.channels_last) if recipe.channels_last else net


# --------------------------------------------------------------------------------------------
# Teachers and losses
# --------------------------------------------------------------------------------------------


class Teacher:
    """The logits (B, k) of a teacher, or of an ensemble of teachers combined by ``how``
    (:func:`multiview.ensemble.combine`), for a training batch. With ``cache`` (N, k) on the
    device (a recipe without augmentation) they are looked up by example index instead."""

    def __init__(
        self,
        members: list[nn.Module],
        how: str,
        recipe: Recipe,
        device: torch.device,
        cache: Tensor | None = None,
    ):
        self.members = members
        self.how = how
        self.recipe = recipe
        self.device = device
        self.cache = cache
        for m in members:
            m.eval()

    def logits(self, x: Tensor) -> Tensor:
        """The (combined) logits of the members on normalized images x (B, 3, H, W)."""
        logits = torch.stack([m(x).float() for m in self.members])
        return ensemble.combine(logits, self.how) if len(self.members) > 1 else logits[0]

    @torch.no_grad()
    def __call__(self, x: Tensor, idx: Tensor) -> Tensor:
        if self.cache is not None:
            return self.cache[idx]
        with autocast(self.recipe, self.device):
            return self.logits(x)


class LabelLoss:
    """Mean cross-entropy with label smoothing. logits (B, k), y (B,) → scalar."""

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = label_smoothing

    def __call__(self, logits: Tensor, y: Tensor, x: Tensor, idx: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)


class KDLoss:
    """Mean over the batch of t·CE(S, y) + (1 − t)·T²·H(softmax(T_logits/T), softmax(S/T))."""

    def __init__(self, teacher: Teacher, t: float, temperature: float):
        self.teacher = teacher
        self.t = t
        self.temperature = temperature

    def __call__(self, logits: Tensor, y: Tensor, x: Tensor, idx: Tensor) -> Tensor:
        target = self.teacher(x, idx)
        return practical_kd_loss(logits.float(), target.float(), y, self.t, self.temperature) / y.shape[0]


LossFn = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


# --------------------------------------------------------------------------------------------
# The optimizer
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


class _Timer:
    """Wall time of a block: CUDA events on a GPU (asynchronous work included), else perf_counter."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def start(self) -> None:
        if self.cuda:
            self.ev0, self.ev1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self.ev0.record()
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        if self.cuda:
            self.ev1.record()
            self.ev1.synchronize()
            return self.ev0.elapsed_time(self.ev1) / 1000.0
        return time.perf_counter() - self.t0


def training_state(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    gen: torch.Generator,
    epoch: int,
    step: int,
    seconds: float,
) -> dict[str, Any]:
    """Everything that determines the rest of a training after ``epoch`` epochs (``step`` optimizer
    steps): the network's weights and buffers, the optimizer's state (momentum buffers), the
    schedule's position (``step``; the learning rate is a function of it) and the data stream's
    generator state (the next epoch's order and augmentation), and the seconds trained so far.
    Tensors and plain data only (it is saved as a checkpoint)."""
    return {
        "epoch": epoch,
        "step": step,
        "seconds": seconds,
        "net": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": gen.get_state(),
    }


def train_model(
    net: nn.Module,
    data: DeviceSet,
    normalize: Normalizer,
    recipe: Recipe,
    gen: torch.Generator,
    loss_fn: LossFn,
    *,
    epochs: float | None = None,
    max_steps: int | None = None,
    progress: ProgressFn | None = None,
    resume: dict[str, Any] | None = None,
    on_epoch: EpochFn | None = None,
) -> TrainStats:
    """Train ``net`` (already on the device) in place for the recipe's epochs (or ``epochs``).

    ``gen`` (CPU) draws the data order and augmentation; ``loss_fn(logits, y, x, idx)`` is a mean
    over the batch. ``max_steps`` stops early (a warm-up run). ``on_epoch(state)`` receives
    :func:`training_state` after every epoch but the last; ``resume`` (such a state) continues from
    it, and the training ends exactly as the uninterrupted one would. Returns :class:`TrainStats`.
    """
    device = data.images.device
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    epochs = recipe.epochs if epochs is None else epochs
    per_epoch = steps_per_epoch(len(data), recipe.batch_size)
    total = total_steps(recipe, len(data), epochs)
    if max_steps is not None:
        total = min(total, max_steps)
    optimizer = make_optimizer(net, recipe)
    step, epoch, seconds_before = 0, 0, 0.0
    if resume is not None:
        net.load_state_dict(resume["net"])
        optimizer.load_state_dict(resume["optimizer"])
        gen.set_state(resume["generator"])
        step, epoch, seconds_before = int(resume["step"]), int(resume["epoch"]), float(resume["seconds"])
    has_whiten = hasattr(net, "set_whiten_bias_trainable")
    timer = _Timer(device)
    net.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    timer.start()
    last_report = time.perf_counter()
    start_step = step
    while step < total:
        if has_whiten:
            net.set_whiten_bias_trainable(epoch < recipe.whiten_bias_epochs)
        draws = draw_epoch(len(data), recipe.crop_padding, recipe.flip, gen, device)
        loss_sum.zero_()
        correct.zero_()
        seen = 0
        for x, y, idx in epoch_batches(
            data, recipe.batch_size, draws, normalize, recipe.crop_padding, recipe.pad_mode
        ):
            if step >= total:
                break
            set_lr(optimizer, lr_factor(step, total, recipe, per_epoch))
            with autocast(recipe, device):
                logits = net(x)
            loss = loss_fn(logits, y, x, idx)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
            correct += (logits.detach().argmax(-1) == y).sum()
            seen += int(y.shape[0])
            step += 1
            if progress is not None and (time.perf_counter() - last_report > 0.5 or step == total):
                last_report = time.perf_counter()
                rate = (step - start_step) * recipe.batch_size / max(1e-9, last_report - timer.t0)
                progress(step, total, rate)
        epoch += 1
        if on_epoch is not None and step < total:
            on_epoch(training_state(net, optimizer, gen, epoch, step, seconds_before + timer.elapsed()))
    trained = timer.elapsed()
    seconds = seconds_before + trained
    net.eval()
    n_batches = max(1, -(-seen // recipe.batch_size))
    return TrainStats(
        seconds=seconds,
        images_per_second=(step - start_step) * min(recipe.batch_size, len(data)) / max(trained, 1e-9),
        steps=step,
        epochs=step / per_epoch,
        final_loss=float(loss_sum) / n_batches,
        train_accuracy=float(correct) / max(1, seen),
    )


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def predict(
    forward: Callable[[Tensor], Tensor],
    data: DeviceSet,
    normalize: Normalizer,
    recipe: Recipe,
    tta: int | None = None,
) -> Tensor:
    """Logits of ``forward`` on every image of ``data`` in order, float32 on the CPU: (N, k), or
    (..., N, k) when ``forward`` returns (..., B, k). Test-time augmentation of level ``tta``
    (default the recipe's) averages the logits of the views of :func:`tta_views`."""
    level = recipe.tta if tta is None else tta
    device = data.images.device
    out = []
    with autocast(recipe, device):
        for s in range(0, len(data), recipe.eval_batch_size):
            x = normalize(data.images[s : s + recipe.eval_batch_size])
            logits = sum(w * forward(v).float() for v, w in tta_views(x, level))
            out.append(logits.cpu())
    return torch.cat(out, dim=-2)


def accuracy(logits: Tensor, y: Tensor) -> float:
    """Fraction of rows of logits (N, k) whose label y (N,) has the strictly largest logit."""
    from multiview.losses import margin_correct

    return float(margin_correct(logits, y.to(logits.device)).float().mean())
