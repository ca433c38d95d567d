"""The TensorBoard tracker on a CIFAR run: test accuracy and final loss per model, final metrics."""

from __future__ import annotations

import pytest
from cifar_helpers import stand_in_arrays

from multiview import trackers
from multiview.cifar.config import build
from multiview.cifar.protocol import run_cifar

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def scalars(acc: EventAccumulator, tag: str) -> tuple[list[int], list[float]]:
    written = acc.Scalars(tag)
    return [e.step for e in written], [e.value for e in written]


def test_a_cifar_run_logs_accuracy_and_loss_per_model(tmp_path):
    arrays = stand_in_arrays(100, 50)
    cfg = build(
        "fast",
        {
            "protocol.stages": ("single", "ensemble"),
            "protocol.seeds": 2,
            "model.fast_width": 4,
            "recipe.epochs": 1,
            "recipe.batch_size": 50,
            "recipe.tta": 0,
        },
    )
    results = run_cifar(cfg, "cpu", reporter=trackers.open_tracker(tmp_path), arrays=arrays)
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    steps, values = scalars(acc, "single/test_accuracy")
    assert steps == [0, 1] and values == pytest.approx(results["single"]["test_accuracy"])
    steps, values = scalars(acc, "single/final_train_loss")
    assert steps == [0, 1] and values == pytest.approx(results["single"]["final_train_loss"], rel=1e-6)
    (ens,) = scalars(acc, "hparam/error/ensemble")[1]
    assert ens == pytest.approx(results["ensemble"]["test_error"]["all"][0], rel=1e-6)
