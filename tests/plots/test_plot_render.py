"""Saving, rendering groups and ``multiview plot``: every figure from results, PNG and PDF."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from matplotlib.image import imread
from plot_helpers import only
from typer.testing import CliRunner

from multiview.cli import app
from multiview.config import get_preset
from multiview.plots import (
    GROUPS,
    SIMULATOR_GROUPS,
    initial_margin_figure,
    learned_views_figure,
    render,
    save,
    students_figure,
)
from multiview.plots.style import load_results
from multiview.plots.views import learned_matrix


def test_save_writes_png_and_pdf(results, tmp_path):
    paths = save(learned_views_figure(results), tmp_path / "sub" / "views", ["png", "pdf"])
    assert [p.name for p in paths] == ["views.png", "views.pdf"]
    png, pdf = paths
    assert png.stat().st_size > 10_000
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 5_000
    img = imread(png)
    assert img.shape[0] > 200 and img.shape[1] > 400
    assert img[..., :3].std() > 0.05  # not a blank canvas


def test_render_all_groups(results, tmp_path):
    done = render(results, SIMULATOR_GROUPS, tmp_path, ["png"])
    names = {p.stem for p in done.written}
    assert names == {n for g in SIMULATOR_GROUPS for n in GROUPS[g]}
    assert not done.skipped
    for p in done.written:
        assert p.stat().st_size > 10_000, p


def test_render_skips_figures_of_missing_stages(results, tmp_path):
    done = render(only(results, "single"), ["views"], tmp_path, ["png"])
    assert {p.stem for p in done.written} == {"learned_views", "shared_views", "views_summary"}
    assert set(done.skipped) == {"coverage", "students"}
    assert "ensemble" in done.skipped["coverage"]


def test_render_rejects_unknown_groups(results, tmp_path):
    with pytest.raises(ValueError, match="unknown figure group"):
        render(results, ["nope"], tmp_path)


def test_figures_accept_null_numbers(results):
    """NaN is written as null in results.json; figures must not choke on it."""
    results["single"]["views"]["lottery_agreement"] = None
    results["self_kd"]["views"]["gained_fraction"] = None
    for fig in (initial_margin_figure(results), students_figure(results)):
        assert "–" in fig.get_suptitle() + "".join(ax.get_title(loc="left") for ax in fig.axes)


# --- the command line -----------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture()
def run_dir(results, tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / "results.json").write_text(json.dumps(results))
    return d


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ("views", {"learned_views", "shared_views", "coverage", "students", "views_summary"}),
        ("dynamics", {"lambda_trajectories", "initial_margin"}),
        ("theorems", {"theorems", "seed_spread", "fixed_features"}),
        ("memorization", {"memorization"}),
    ],
)
def test_cli_plot_group(run_dir, tmp_path, group, expected):
    out = tmp_path / "figs"
    formats = ("png", "pdf") if group == "memorization" else ("png",)
    res = runner.invoke(app, ["plot", group, str(run_dir), "--out", str(out), "--format", ",".join(formats)])
    assert res.exit_code == 0, res.output
    assert {p.name for p in out.iterdir()} == {f"{n}.{e}" for n in expected for e in formats}


def test_cli_plot_all_defaults_to_the_run_folder(run_dir):
    res = runner.invoke(app, ["plot", "all", str(run_dir / "results.json"), "--format", "png"])
    assert res.exit_code == 0, res.output
    assert len(list((run_dir / "figures").glob("*.png"))) == sum(len(GROUPS[g]) for g in SIMULATOR_GROUPS)


def test_cli_plot_dynamics_with_chosen_seeds_and_classes(run_dir, tmp_path):
    res = runner.invoke(
        app,
        [
            "plot",
            "dynamics",
            str(run_dir),
            "--seeds",
            "1",
            "--classes",
            "0,2",
            "--time",
            "flow_time",
            "--out",
            str(tmp_path),
            "-f",
            "png",
        ],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "lambda_trajectories.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["overlap", "{run}", "--format", "xyz"], "--format xyz: not a figure format; use one or more of"),
        (["views", "{run}", "--format", ","], "not a figure format"),
        (["dynamics", "{run}", "--seeds", "99"], "seed 99 is not in the run: its seed indices are 0–"),
        (["dynamics", "{run}", "--classes", "-1"], "class -1 is not in the run"),
        (["dynamics", "{run}", "--seeds", "one"], "--seeds 'one': give comma-separated indices"),
        (["views", "{bad}"], "{bad} is not valid JSON"),
        (["dynamics", "{bad}", "--seeds", "0"], "{bad} is not valid JSON"),
        (["views", "{run}", "--out", "{file}"], "is not a folder"),
    ],
)
def test_cli_plot_refuses_bad_input_by_name(run_dir, tmp_path, args, message):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": 1, "con')
    (tmp_path / "file").write_text("")
    names = {"run": run_dir, "bad": bad, "file": tmp_path / "file"}
    res = runner.invoke(app, ["plot", *(a.format(**names) for a in args)])
    assert res.exit_code == 2, res.output
    assert message.format(**names) in " ".join(res.stderr.split())
    assert not (tmp_path / "figures").exists()


def test_cli_plot_reports_a_missing_run(tmp_path):
    res = runner.invoke(app, ["plot", "overlap", str(tmp_path / "nowhere")])
    assert res.exit_code != 0
    assert "results.json" in res.output


def test_cli_plot_fails_when_nothing_can_be_drawn(results, tmp_path):
    d = tmp_path / "partial"
    d.mkdir()
    (d / "results.json").write_text(json.dumps(only(results, "training_average")))
    res = runner.invoke(app, ["plot", "memorization", str(d)])
    assert res.exit_code == 2
    assert "skipped memorization" in res.stdout
    assert "no figure could be drawn" in res.stderr


# --- on real protocol output ---------------------------------------------------------------


@pytest.fixture(scope="module")
def real_results(tmp_path_factory):
    from multiview.protocol import run_protocol

    cfg = get_preset("smoke").with_overrides(
        {
            "protocol.stages": "single,ensemble,kd,self_kd",
            "train.max_steps": 100,
            "protocol.kd_steps": 50,
            "data.n_test": 500,
        }
    )
    out = tmp_path_factory.mktemp("real")
    run_protocol(cfg, "cpu", out)
    return load_results(out)


def test_every_figure_draws_from_a_real_run(real_results, tmp_path):
    done = render(real_results, SIMULATOR_GROUPS, tmp_path, ["png"])
    assert set(done.skipped) == {"fixed_features"}  # the run has no random-feature / NTK stage
    assert len(done.written) == sum(len(GROUPS[g]) for g in SIMULATOR_GROUPS) - 1
    fig = learned_views_figure(real_results)
    np.testing.assert_array_equal(
        fig.axes[0].images[0].get_array(), learned_matrix(real_results["views"]["learned"])
    )
    assert not math.isnan(float(np.asarray(fig.axes[0].images[0].get_array()).sum()))
