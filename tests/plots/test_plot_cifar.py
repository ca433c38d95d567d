"""CIFAR figures: accuracy per method, ensemble curve, wrong sets, channel split."""

from __future__ import annotations

import json

import numpy as np
import pytest
from plot_helpers import cifar_results
from typer.testing import CliRunner

from multiview.cli import app
from multiview.plots import (
    GROUPS,
    channel_split_figure,
    cifar_ensemble_curve_figure,
    cifar_methods_figure,
    cifar_mistakes_figure,
)

runner = CliRunner()


def test_cifar_methods_figure():
    r = cifar_results()
    fig = cifar_methods_figure(r)
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[:2] == ["single models", "ensemble"] and len(labels) == 6
    assert ax.patches[0].get_height() == pytest.approx(100 * np.mean(r["single"]["test_accuracy"]))
    assert ax.get_ylabel() == "test accuracy (%)"
    assert "CIFAR-10" in fig.get_suptitle() and "KD keeps" in fig.get_suptitle()


def test_cifar_curve_overlap_and_channel_split():
    r = cifar_results()
    fig = cifar_ensemble_curve_figure(r)
    assert len(fig.axes[0].get_lines()) == 3
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_ydata(), [90.5, 92.0, 93.0])
    fig = cifar_mistakes_figure(r)
    ax_j, ax_c = fig.axes[:2]
    np.testing.assert_allclose(ax_j.images[0].get_array(), r["overlap"]["single"]["pairwise_jaccard"])
    assert [p.get_height() for p in ax_c.patches] == [850, 60, 40, 50]
    fig = channel_split_figure(r)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["all", "1/2", "1/4", "1/8"]


def test_cli_plot_all_picks_the_cifar_figures(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(cifar_results()))
    res = runner.invoke(app, ["plot", "all", str(tmp_path), "--format", "png"])
    assert res.exit_code == 0, res.output
    assert {p.stem for p in (tmp_path / "figures").glob("*.png")} == set(GROUPS["cifar"])
