"""Configuration of the CIFAR mode: data, network, training recipe, protocol and master seed.

A :class:`CifarConfig` and its master ``seed`` determine a run: every model's initialization,
data order and augmentation come from seeds derived from them (:mod:`multiview.seeding`).
It is saved as ``config.toml`` and as ``config`` in ``results.json``; ``--config`` reads it back.
Values are checked up front and every error names the field (``recipe.lr``) and what it allows
(:mod:`multiview.settings`). The recipe section and the named recipes are in
:mod:`multiview.cifar.recipes`. This module imports no torch, so the command line stays cheap.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from multiview import stages as registry
from multiview.cifar.recipes import Recipe, recipe_named
from multiview.settings import (
    ConfigError,
    Constraint,
    Integer,
    Number,
    OneOf,
    Positive,
    Section,
    Settings,
    SomeOf,
)

DATASETS = {"cifar10": 10, "cifar100": 100}
LAYOUT_HELP = (
    "torchvision's cifar-10-batches-py/ (data_batch_1..5, test_batch) or cifar-100-python/ "
    "(train, test, meta), an ImageFolder tree train/<class>/*.jpg + test/<class>/*.jpg, "
    "or a .tar.gz of either"
)
"""The layouts :mod:`multiview.cifar.data` reads, for messages."""
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
class CifarData(Section):
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

    section: ClassVar[str] = "data"
    constraints: ClassVar[dict[str, Constraint]] = {
        "dataset": OneOf(tuple(DATASETS)),
        "labels": OneOf(("fine", "coarse")),
        "train_subset": Integer(0),
        "test_subset": Integer(0),
        "subset_seed": Integer(0),
    }

    def check(self) -> None:
        if self.labels == "coarse" and self.dataset != "cifar100":
            raise ConfigError("data.labels = 'coarse': only cifar100 has coarse labels")
        for name in ("train_subset", "test_subset"):
            n = getattr(self, name)
            if 0 < n < self.num_classes:
                raise ConfigError(
                    f"data.{name} = {n}: a class-balanced subset needs at least one image per class "
                    f"({self.num_classes}); 0 means all images"
                )


@dataclass
class CifarModel(Section):
    """The network: ``arch`` (see :data:`ARCH_HELP`); ``fast_width`` is the fast network's base
    width (its three blocks have w, 4w, 4w channels; 64 is the airbench94 size)."""

    arch: str = "fast"
    fast_width: int = 64

    section: ClassVar[str] = "model"
    constraints: ClassVar[dict[str, Constraint]] = {"fast_width": Integer(1)}

    def check(self) -> None:
        self.arch = parse_arch(self.arch).name


@dataclass
class CifarProtocol(Section):
    """What is trained (spec §6, §10).

    ``seeds`` = S single models. ``stages``: any of the CIFAR stages of :mod:`multiview.stages`
    (prerequisites are added).
    ``ensemble_combine``: ``logits`` (mean of logits, the paper's G) or ``probs``.
    Training the average: ``training_average_models`` models, each of ``training_average_K``
    sub-networks (0 = S) trained with one loss on their mean logits. KD: ``kd_students`` students
    (0 = S) of the ensemble of all S single models; self-KD: one student per single model; both
    with t·CE + (1 − t)·T²·H(teacher/T, student/T), t = ``kd_t``, T = ``kd_temperature``, each
    student trained for ``kd_epochs`` epochs, or (``kd_epochs`` = 0) ``kd_epochs_factor`` times the
    recipe's epochs (its teachers'): 3 by default, measured in docs/cifar.md; 1 trains the students
    as long as their teachers.
    Channel split: at layer ``channel_split_layer`` (``a``: after the first block group, ``b``:
    after the second) of the first ``channel_split_seeds`` single models (0 = S), keep a seeded
    1/n of the channels for each n in ``channel_split_n`` and train a new network from that layer
    on, the layers below frozen, for ``channel_split_epochs`` (0 = the recipe's). ``warmup_steps``:
    optimizer steps of a throw-away model before the first timed one (CUDA kernel selection).
    """

    seeds: int = 10
    stages: tuple[str, ...] = registry.names(registry.CIFAR)
    ensemble_combine: str = "logits"
    training_average_K: int = 0
    training_average_models: int = 1
    kd_students: int = 0
    kd_t: float = 0.1
    kd_temperature: float = 4.0
    kd_epochs: float = 0.0
    kd_epochs_factor: float = 3.0
    channel_split_layer: str = "b"
    channel_split_n: tuple[int, ...] = (1, 2, 4, 8)
    channel_split_seeds: int = 0
    channel_split_epochs: float = 0.0
    warmup_steps: int = 0

    section: ClassVar[str] = "protocol"
    constraints: ClassVar[dict[str, Constraint]] = {
        "seeds": Integer(1),
        "stages": SomeOf(registry.names(registry.CIFAR)),
        "ensemble_combine": OneOf(("logits", "probs")),
        "training_average_K": Integer(0),
        "training_average_models": Integer(1),
        "kd_students": Integer(0),
        "kd_t": Number(0.0, 1.0),
        "kd_temperature": Positive,
        "kd_epochs": Number(0.0),
        "kd_epochs_factor": Positive,
        "channel_split_layer": OneOf(("a", "b")),
        "channel_split_seeds": Integer(0),
        "channel_split_epochs": Number(),
        "warmup_steps": Integer(0),
    }

    def check(self) -> None:
        if not self.channel_split_n or any(
            isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in self.channel_split_n
        ):
            raise ConfigError(
                f"protocol.channel_split_n = {list(self.channel_split_n)}: "
                "a list of integers ≥ 1, e.g. [1, 2, 4, 8]"
            )

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
class CifarConfig(Settings):
    """One CIFAR run. ``seed`` is the master seed every random stream is derived from."""

    data: CifarData = field(default_factory=CifarData)
    model: CifarModel = field(default_factory=CifarModel)
    recipe: Recipe = field(default_factory=Recipe)
    protocol: CifarProtocol = field(default_factory=CifarProtocol)
    seed: int = 0

    noun: ClassVar[str] = "setting"
    constraints: ClassVar[dict[str, Constraint]] = {"seed": Integer(0)}

    @property
    def num_classes(self) -> int:
        return self.data.num_classes

    @property
    def student_epochs(self) -> float:
        """The epochs of a KD or self-KD student: ``protocol.kd_epochs``, or
        ``protocol.kd_epochs_factor`` times the recipe's."""
        return self.protocol.kd_epochs or self.protocol.kd_epochs_factor * self.recipe.epochs

    def identity(self) -> dict[str, Any]:
        """The settings that determine results (the data's location and cache are left out)."""
        d = self.to_dict()
        d["data"] = {k: v for k, v in d["data"].items() if k not in ("path", "cache_dir")}
        return d

    @classmethod
    def starting_point(cls, raw: dict[str, Any], base: CifarConfig | None) -> CifarConfig:
        """The recipe named in ``recipe.name`` supplies the values the data leaves out (the fast
        recipe's when the name is not a known recipe)."""
        if base is not None:
            return copy.deepcopy(base)
        name = raw["recipe"].get("name", "fast") if isinstance(raw.get("recipe"), dict) else "fast"
        try:
            return cls(recipe=recipe_named(name))
        except ConfigError:
            return cls()


def build(
    recipe: str = "fast", overrides: dict[str, Any] | None = None, base: CifarConfig | None = None
) -> CifarConfig:
    """The named recipe's defaults (unless ``base`` is given), then ``overrides``, validated."""
    cfg = copy.deepcopy(base) if base is not None else CifarConfig(recipe=recipe_named(recipe))
    return cfg.with_overrides(overrides or {})
