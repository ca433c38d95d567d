"""Configuration of the CIFAR mode: data, network, training recipe, protocol and master seed.

A :class:`CifarConfig` and its master ``seed`` determine a run: every model's initialization,
data order and augmentation come from seeds derived from them (:mod:`multiview.seeding`).
It is saved as ``config.toml`` and as ``config`` in ``results.json``; ``--config`` reads it back.
Values are checked up front and every error names the field (``recipe.lr``) and what it allows.

This module imports no torch, so the command line stays cheap to import.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from multiview.config import parse_sets as parse_sets  # re-exported: cifar's --set items
from multiview.validation import (
    ConfigError,
    boolean,
    choice,
    choices,
    coerce,
    dotted_keys,
    field_type,
    flatten_sections,
    in_range,
    int_at_least,
    plain,
    read_toml,
    resolve_bare_key,
    split_key,
)

STAGES = (
    "single",
    "ensemble",
    "training_average",
    "kd",
    "self_kd",
    "ensemble_of_kd",
    "channel_split",
    "overlap",
)

DATASETS = {"cifar10": 10, "cifar100": 100}
CIFAR100_COARSE = 20


# --------------------------------------------------------------------------------------------
# Architectures (parsed here, without torch, so that validation needs no network code)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchSpec:
    """A parsed architecture name. ``kind``: ``fast``, ``wrn`` or ``resnet``; ``depth`` and
    ``width`` (WRN-d-k: depth d, widening k; ResNet-d-w: depth 18/34, width multiplier w)."""

    kind: str
    depth: int = 0
    width: int = 1

    @property
    def name(self) -> str:
        if self.kind == "fast":
            return "fast"
        if self.kind == "wrn":
            return f"wrn-{self.depth}-{self.width}"
        return f"resnet{self.depth}" + (f"-{self.width}" if self.width != 1 else "")


ARCH_HELP = (
    "fast (the default: a small airbench-class conv net), wrn-D-K (WideResNet, e.g. wrn-28-10, "
    "wrn-28-2, wrn-16-10, wrn-22-10; resnet-28-10 means wrn-28-10), resnet34 / resnet18 with a "
    "CIFAR stem (resnet34-2: twice the width)"
)


def parse_arch(name: str) -> ArchSpec:
    """``"WRN-28-10"`` → ArchSpec("wrn", 28, 10). Raises :class:`ConfigError` on unknown names."""
    text = name.strip().lower().replace("_", "-")
    if text == "fast":
        return ArchSpec("fast")
    m = re.fullmatch(r"(?:wrn|wide-?resnet|resnet)-?(\d+)-(\d+)", text)
    if m and not (text.startswith("resnet") and int(m.group(1)) in (18, 34)):
        depth, width = int(m.group(1)), int(m.group(2))
        if depth < 10 or (depth - 4) % 6 != 0 or width < 1:
            raise ConfigError(
                f"model.arch = {name!r}: a WideResNet needs depth 6·n + 4 ≥ 10 and width ≥ 1 (e.g. wrn-28-10)"
            )
        return ArchSpec("wrn", depth, width)
    m = re.fullmatch(r"resnet-?(18|34)(?:-(\d+))?", text)
    if m:
        return ArchSpec("resnet", int(m.group(1)), int(m.group(2) or 1))
    raise ConfigError(f"model.arch = {name!r}: unknown architecture; use {ARCH_HELP}")


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


@dataclass
class CifarData:
    """Which data. ``dataset``: ``cifar10`` or ``cifar100``; ``path``: the torchvision folder
    (``cifar-10-batches-py`` / ``cifar-100-python`` or a folder holding it), an ImageFolder tree
    (``train/<class>/*``, ``test/<class>/*``) or a ``.tar.gz`` of either. ``labels``: CIFAR-100's
    ``fine`` (100) or ``coarse`` (20) labels. ``train_subset`` / ``test_subset``: a class-balanced
    subset of that many images, drawn from ``subset_seed`` (0 = all). ``cache_dir``: where
    decoded arrays are cached (empty = ``~/.cache/multiview/cifar``)."""

    dataset: str = "cifar10"
    path: str = ""
    labels: str = "fine"
    train_subset: int = 0
    test_subset: int = 0
    subset_seed: int = 0
    cache_dir: str = ""

    @property
    def num_classes(self) -> int:
        if self.dataset == "cifar100" and self.labels == "coarse":
            return CIFAR100_COARSE
        return DATASETS[self.dataset]

    def validate(self) -> None:
        choice("data.dataset", self.dataset, tuple(DATASETS))
        choice("data.labels", self.labels, ("fine", "coarse"))
        if self.labels == "coarse" and self.dataset != "cifar100":
            raise ConfigError("data.labels = 'coarse': only cifar100 has coarse labels")
        for name in ("train_subset", "test_subset", "subset_seed"):
            int_at_least(f"data.{name}", getattr(self, name), 0)
        for name in ("train_subset", "test_subset"):
            n = getattr(self, name)
            if 0 < n < self.num_classes:
                raise ConfigError(
                    f"data.{name} = {n}: a class-balanced subset needs at least one image per class "
                    f"({self.num_classes}); 0 means all images"
                )


@dataclass
class CifarModel:
    """The network: ``arch`` (see :data:`ARCH_HELP`); ``fast_width`` is the fast network's base
    width (its three blocks have w, 4w, 4w channels; 64 is the airbench94 size)."""

    arch: str = "fast"
    fast_width: int = 64

    def validate(self) -> None:
        self.arch = parse_arch(self.arch).name
        int_at_least("model.fast_width", self.fast_width, 1)


@dataclass
class Recipe:
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

    @property
    def augments(self) -> bool:
        return self.crop_padding > 0 or self.flip

    def effective_lr(self) -> float:
        if self.lr_reference_batch > 0:
            return self.lr * self.batch_size / self.lr_reference_batch
        return self.lr

    def validate(self) -> None:
        if not self.name:
            raise ConfigError("recipe.name is empty")
        in_range("recipe.epochs", self.epochs, 0.0, math.inf, open_low=True)
        int_at_least("recipe.batch_size", self.batch_size, 1)
        in_range("recipe.lr", self.lr, 0.0, math.inf, open_low=True)
        int_at_least("recipe.lr_reference_batch", self.lr_reference_batch, 0)
        in_range("recipe.momentum", self.momentum, 0.0, 1.0)
        if self.momentum >= 1.0:
            raise ConfigError(f"recipe.momentum = {self.momentum}: must be below 1")
        boolean("recipe.nesterov", self.nesterov)
        if self.nesterov and self.momentum == 0:
            raise ConfigError("recipe.nesterov = true needs recipe.momentum > 0")
        in_range("recipe.weight_decay", self.weight_decay, 0.0, math.inf)
        in_range("recipe.bias_lr_scale", self.bias_lr_scale, 0.0, math.inf, open_low=True)
        choice("recipe.schedule", self.schedule, ("step", "cosine", "triangle", "constant"))
        if not isinstance(self.milestones, tuple) or any(not (0.0 < m <= 1.0) for m in self.milestones):
            raise ConfigError(
                f"recipe.milestones = {list(self.milestones)}: fractions of training in (0, 1], "
                "e.g. [0.3, 0.6, 0.8] for epochs 60/120/160 of 200"
            )
        if list(self.milestones) != sorted(self.milestones):
            raise ConfigError(f"recipe.milestones = {list(self.milestones)}: must be increasing")
        in_range("recipe.lr_decay", self.lr_decay, 0.0, 1.0, open_low=True)
        in_range("recipe.warmup_epochs", self.warmup_epochs, 0.0, self.epochs)
        in_range("recipe.lr_start", self.lr_start, 0.0, math.inf)
        in_range("recipe.lr_peak", self.lr_peak, 0.0, 1.0)
        in_range("recipe.lr_end", self.lr_end, 0.0, math.inf)
        in_range("recipe.label_smoothing", self.label_smoothing, 0.0, 1.0)
        if self.label_smoothing >= 1.0:
            raise ConfigError(f"recipe.label_smoothing = {self.label_smoothing}: must be below 1")
        int_at_least("recipe.crop_padding", self.crop_padding, 0)
        if self.crop_padding > 16:
            raise ConfigError(f"recipe.crop_padding = {self.crop_padding}: at most 16 pixels")
        choice("recipe.pad_mode", self.pad_mode, ("zeros", "reflect"))
        boolean("recipe.flip", self.flip)
        choice("recipe.tta", self.tta, (0, 1, 2))
        in_range("recipe.whiten_bias_epochs", self.whiten_bias_epochs, 0.0, math.inf)
        int_at_least("recipe.eval_batch_size", self.eval_batch_size, 1)
        choice("recipe.precision", self.precision, ("auto", "float32", "bfloat16"))
        boolean("recipe.channels_last", self.channels_last)


@dataclass
class CifarProtocol:
    """What is trained (spec §6, §10).

    ``seeds`` = S single models. ``stages``: any of :data:`STAGES` (prerequisites are added).
    ``ensemble_combine``: ``logits`` (mean of logits, the paper's G) or ``probs``.
    Training the average: ``training_average_models`` models, each of ``training_average_K``
    sub-networks (0 = S) trained with one loss on their mean logits. KD: ``kd_students`` students
    (0 = S) of the ensemble of all S single models; self-KD: one student per single model; both
    with t·CE + (1 − t)·T²·H(teacher/T, student/T), t = ``kd_t``, T = ``kd_temperature``.
    Channel split: at layer ``channel_split_layer`` (``a``: after the first block group, ``b``:
    after the second) of the first ``channel_split_seeds`` single models (0 = S), keep a seeded
    1/n of the channels for each n in ``channel_split_n`` and train a new network from that layer
    on, the layers below frozen, for ``channel_split_epochs`` (0 = the recipe's). ``warmup_steps``:
    optimizer steps of a throw-away model before the first timed one (CUDA kernel selection).
    """

    seeds: int = 10
    stages: tuple[str, ...] = STAGES
    ensemble_combine: str = "logits"
    training_average_K: int = 0
    training_average_models: int = 1
    kd_students: int = 0
    kd_t: float = 0.1
    kd_temperature: float = 4.0
    channel_split_layer: str = "b"
    channel_split_n: tuple[int, ...] = (1, 2, 4, 8)
    channel_split_seeds: int = 0
    channel_split_epochs: float = 0.0
    warmup_steps: int = 0

    def validate(self) -> None:
        int_at_least("protocol.seeds", self.seeds, 1)
        choices("protocol.stages", self.stages, STAGES)
        choice("protocol.ensemble_combine", self.ensemble_combine, ("logits", "probs"))
        int_at_least("protocol.training_average_K", self.training_average_K, 0)
        int_at_least("protocol.training_average_models", self.training_average_models, 1)
        int_at_least("protocol.kd_students", self.kd_students, 0)
        in_range("protocol.kd_t", self.kd_t, 0.0, 1.0)
        in_range("protocol.kd_temperature", self.kd_temperature, 0.0, math.inf, open_low=True)
        choice("protocol.channel_split_layer", self.channel_split_layer, ("a", "b"))
        if not self.channel_split_n or any(
            isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in self.channel_split_n
        ):
            raise ConfigError(
                f"protocol.channel_split_n = {list(self.channel_split_n)}: "
                "a list of integers ≥ 1, e.g. [1, 2, 4, 8]"
            )
        int_at_least("protocol.channel_split_seeds", self.channel_split_seeds, 0)
        in_range("protocol.channel_split_epochs", self.channel_split_epochs, 0.0, math.inf)
        int_at_least("protocol.warmup_steps", self.warmup_steps, 0)

    @property
    def K(self) -> int:
        return self.training_average_K or self.seeds

    @property
    def n_kd_students(self) -> int:
        return self.kd_students or self.seeds

    @property
    def n_split_seeds(self) -> int:
        return min(self.channel_split_seeds or self.seeds, self.seeds)


@dataclass
class CifarConfig:
    """One CIFAR run. ``seed`` is the master seed every random stream is derived from."""

    data: CifarData = field(default_factory=CifarData)
    model: CifarModel = field(default_factory=CifarModel)
    recipe: Recipe = field(default_factory=Recipe)
    protocol: CifarProtocol = field(default_factory=CifarProtocol)
    seed: int = 0

    def validate(self) -> CifarConfig:
        self.data.validate()
        self.model.validate()
        self.recipe.validate()
        self.protocol.validate()
        int_at_least("seed", self.seed, 0)
        return self

    @property
    def num_classes(self) -> int:
        return self.data.num_classes

    def to_dict(self) -> dict[str, Any]:
        return plain(dataclasses.asdict(self))

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    def identity(self) -> dict[str, Any]:
        """The settings that determine results (the data's location and cache are left out)."""
        d = self.to_dict()
        d["data"] = {k: v for k, v in d["data"].items() if k not in ("path", "cache_dir")}
        return d

    def config_hash(self) -> str:
        """A stable 16-hex-digit hash of :meth:`identity`."""
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def with_overrides(self, overrides: dict[str, Any]) -> CifarConfig:
        """A validated copy with dotted-key overrides (``{"recipe.lr": 0.05}``); bare names that
        belong to one section (``lr``) are accepted too."""
        cfg = copy.deepcopy(self)
        for key, value in overrides.items():
            _set_path(cfg, key, value)
        return cfg.validate()


# --------------------------------------------------------------------------------------------
# Building configs
# --------------------------------------------------------------------------------------------


def build(
    recipe: str = "fast", overrides: dict[str, Any] | None = None, base: CifarConfig | None = None
) -> CifarConfig:
    """The named recipe's defaults (unless ``base`` is given), then ``overrides``, validated."""
    from multiview.cifar.recipes import recipe_named

    cfg = copy.deepcopy(base) if base is not None else CifarConfig(recipe=recipe_named(recipe))
    return cfg.with_overrides(overrides or {})


def from_dict(raw: dict[str, Any]) -> CifarConfig:
    """A validated config from nested plain data (a saved ``config``); unknown keys are errors.
    The recipe named in ``recipe.name`` supplies the values the data leaves out."""
    from multiview.cifar.recipes import recipe_named

    name = raw.get("recipe", {}).get("name", "fast") if isinstance(raw.get("recipe"), dict) else "fast"
    try:
        base = CifarConfig(recipe=recipe_named(name))
    except ConfigError:
        base = CifarConfig()
    return base.with_overrides(flatten_sections(raw, _SECTIONS))


def load_toml(path: str | Path) -> CifarConfig:
    return from_dict(read_toml(path))


def all_keys() -> list[str]:
    return dotted_keys(_FIELDS, _TOP)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

_SECTIONS = {"data": CifarData, "model": CifarModel, "recipe": Recipe, "protocol": CifarProtocol}
_FIELDS = {sec: [f.name for f in dataclasses.fields(t)] for sec, t in _SECTIONS.items()}
_TOP = ("seed",)


def resolve_key(key: str) -> str:
    """``lr`` → ``recipe.lr`` when the bare name belongs to one section."""
    return resolve_bare_key(key, _FIELDS, _TOP, noun="setting", known="known")


def _set_path(cfg: CifarConfig, key: str, value: Any) -> None:
    key = resolve_key(key)
    if key == "seed":
        cfg.seed = coerce(key, value, "int", lenient=True)
        return
    section, name = split_key(key, _FIELDS, noun="setting")
    obj = getattr(cfg, section)
    setattr(obj, name, coerce(key, value, field_type(obj, name), lenient=True))
