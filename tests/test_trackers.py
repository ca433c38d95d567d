"""The TensorBoard tracker on the reporter hook: what it writes, read back from the event files."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from multiview import trackers
from multiview.cli import app
from multiview.config import get_preset
from multiview.progress import Reporter, Reporters
from multiview.protocol import run_protocol
from multiview.stats import nanmean

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def events(log_dir) -> EventAccumulator:
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def scalars(acc: EventAccumulator, tag: str) -> tuple[list[int], list[float]]:
    """The steps and values written under ``tag``."""
    written = acc.Scalars(tag)
    return [e.step for e in written], [e.value for e in written]


def test_the_log_holds_losses_lambda_views_and_final_metrics(tmp_path):
    cfg = get_preset("smoke").with_overrides({"protocol.stages": "single,ensemble,kd", "data.n_test": 500})
    results = run_protocol(cfg, reporter=trackers.open_tracker(tmp_path))
    acc = events(tmp_path)
    tags = set(acc.Tags()["scalars"])

    # the live loss of the single models' training, every 10 steps and at the end
    live, _ = scalars(acc, "single/loss")
    assert live[0] == 0 and live[-1] == max(results["single"]["steps"])
    assert all(s % 10 == 0 for s in live[1:-1])

    # Λ of the winning and losing views over the logged steps (mean over models and classes)
    history = results["single"]["history"]
    L = np.array(history["Lambda"])  # (T, S, k, 2)
    win = (L[-1, ..., 1] > L[-1, ..., 0]).astype(int)  # (S, k)
    won = np.take_along_axis(L, win[None, ..., None], -1)[..., 0].mean((1, 2))
    lost = np.take_along_axis(L, 1 - win[None, ..., None], -1)[..., 0].mean((1, 2))
    steps, values = scalars(acc, "single/history/Lambda_winning")
    assert steps == history["step"] and values == pytest.approx(won, rel=1e-6)
    steps, values = scalars(acc, "single/history/Lambda_losing")
    assert steps == history["step"] and values == pytest.approx(lost, rel=1e-6)
    assert won[-1] > lost[-1]
    assert scalars(acc, "kd/history/both_fraction")[0] == results["kd"]["history"]["step"]

    # end-of-stage numbers and the views learned per class
    (err,) = scalars(acc, "single/test_error/all")[1]
    assert err == pytest.approx(nanmean(results["single"]["test_error"]["all"]), rel=1e-6)
    (both,) = scalars(acc, "kd/views/both")[1]
    assert both == pytest.approx(results["kd"]["views"]["both_fraction"], rel=1e-6)
    histogram = acc.Histograms("single/views_per_class")[0].histogram_value
    learned = np.array(results["single"]["views"]["learned"]).sum(-1)
    assert histogram.num == learned.size and histogram.sum == learned.sum()

    # hyper-parameters and final metrics for the HParams view
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    content = acc.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    hparams = HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["data.mu"].number_value == pytest.approx(cfg.data.mu)
    assert hparams["protocol.stages"].string_value == "['single', 'ensemble', 'kd']"
    (final,) = scalars(acc, "hparam/error/single")[1]
    assert final == pytest.approx(err, rel=1e-6)
    assert "hparam/error_over_mu/kd" in tags and "hparam/bounds/judged" in tags


def test_hyperparameters_are_flat_scalars():
    flat = trackers.hyperparameters(
        {"data": {"mu": 0.1, "k": 4}, "protocol": {"stages": ["single"]}, "seed": 0}
    )
    assert flat == {"data.mu": 0.1, "data.k": 4, "protocol.stages": "['single']", "seed": 0}


def test_reporters_hand_every_report_to_each():
    class Count(Reporter):
        def __init__(self):
            self.seen = []

        def stage_result(self, stage, part, cached):
            self.seen.append(stage)

    a, b = Count(), Count()
    both = Reporters(a, None, b)
    both.stage_result("kd", {}, False)
    both.step("kd", 1, 2, 1, 0.5)  # a report neither implements
    assert a.seen == b.seen == ["kd"]


def test_log_dir_without_tensorboard_is_a_named_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if not installed
    with pytest.raises(trackers.TrackerUnavailable, match=r"pip install 'multiview\[tensorboard\]'"):
        trackers.open_tracker(tmp_path)
    result = CliRunner().invoke(app, ["simulate", "--preset", "smoke", "--log-dir", str(tmp_path / "tb")])
    assert (
        result.exit_code == 2 and "--log-dir" in result.output and "multiview[tensorboard]" in result.output
    )
    assert not (tmp_path / "tb").exists()


def test_a_cifar_run_logs_accuracy_and_loss_per_model(tmp_path):
    import torch

    from multiview.cifar.config import build
    from multiview.cifar.data import CifarArrays
    from multiview.cifar.protocol import run_cifar

    rng = np.random.default_rng(0)
    arrays = CifarArrays(
        train_x=rng.integers(0, 256, (100, 32, 32, 3), dtype=np.uint8),
        train_y=np.arange(100) % 10,
        test_x=rng.integers(0, 256, (50, 32, 32, 3), dtype=np.uint8),
        test_y=np.arange(50) % 10,
        classes=[str(i) for i in range(10)],
        source="random",
        layout="arrays",
        fingerprint="random",
    )
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
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = run_cifar(cfg, "cpu", reporter=trackers.open_tracker(tmp_path), arrays=arrays)
    finally:
        torch.set_num_threads(threads)
    acc = events(tmp_path)
    steps, values = scalars(acc, "single/test_accuracy")
    assert steps == [0, 1] and values == pytest.approx(results["single"]["test_accuracy"])
    steps, values = scalars(acc, "single/final_train_loss")
    assert steps == [0, 1] and values == pytest.approx(results["single"]["final_train_loss"], rel=1e-6)
    (ens,) = scalars(acc, "hparam/error/ensemble")[1]
    assert ens == pytest.approx(results["ensemble"]["test_error"]["all"][0], rel=1e-6)
