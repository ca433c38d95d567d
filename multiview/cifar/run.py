"""A run of the CIFAR protocol as its stages see it: the config, the device, where models are
saved, progress, the data on the device and the models each stage trained.

:meth:`CifarRun.create` moves the configured subsets to the device; :mod:`multiview.cifar.fit`
trains (or loads) one model of the run; :mod:`multiview.cifar.protocol` runs the stages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from multiview.cifar.config import CifarConfig
from multiview.cifar.data import CifarArrays, balanced_subset
from multiview.cifar.nets import whitening_filters
from multiview.cifar.pipeline import DeviceSet, Normalizer
from multiview.progress import Reporter


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
    """What the stages of one CIFAR run share: the config, the device, where models are saved
    (``out``, ``resume``), progress, the data on the device, the fast network's whitening filters,
    the data's identity (part of every model's key), the test images' indices in the full test set
    (a subset), the models each stage trained, and how often a model in training saves its state
    (``epoch_checkpoint_s``: at the end of an epoch, at least that many seconds after the last
    save; 0: every epoch)."""

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
    warmed_up: bool = False
    epoch_checkpoint_s: float = 60.0

    @classmethod
    def create(
        cls,
        cfg: CifarConfig,
        device: torch.device,
        out: Path | None,
        resume: bool,
        reporter: Reporter,
        arrays: CifarArrays,
    ) -> CifarRun:
        """Move the configured subsets of ``arrays`` to ``device`` (and fit the fast network's
        whitening filters to the training images)."""
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
        return cls(
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

    @property
    def y_test(self) -> Tensor:
        return self.test_set.labels.cpu()
