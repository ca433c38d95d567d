"""The TensorBoard tracker on the reporter hook: what it writes, read back from the event files."""

from __future__ import annotations

import json
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


def test_simulate_log_dir_writes_the_log(tmp_path):
    args = ["simulate", "--preset", "smoke", "--only", "single", "--set", "data.n_test=300", "--quiet"]
    result = CliRunner().invoke(
        app, [*args, "--out", str(tmp_path / "run"), "--log-dir", str(tmp_path / "tb")]
    )
    assert result.exit_code == 0, result.output
    (err,) = scalars(events(tmp_path / "tb"), "single/test_error/all")[1]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert err == pytest.approx(nanmean(results["single"]["test_error"]["all"]), rel=1e-6)
