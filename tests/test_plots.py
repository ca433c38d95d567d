"""Figure functions: each draws what the results say, with the expected axes, and saves PNG/PDF."""

from __future__ import annotations

import json
import math

import matplotlib
import numpy as np
import pytest
from matplotlib.image import imread
from typer.testing import CliRunner

matplotlib.use("Agg")

from multiview import bounds  # noqa: E402
from multiview.cli import app  # noqa: E402
from multiview.config import get_preset  # noqa: E402
from multiview.plots import (  # noqa: E402
    GROUPS,
    SIMULATOR_GROUPS,
    channel_split_figure,
    cifar_ensemble_curve_figure,
    cifar_methods_figure,
    cifar_mistakes_figure,
    coverage_figure,
    fixed_features_figure,
    initial_margin_figure,
    lambda_trajectories_figure,
    learned_views_figure,
    memorization_figure,
    render,
    save,
    shared_views_figure,
    students_figure,
    theorems_figure,
    views_summary_figure,
)
from multiview.plots.style import OKABE_ITO, load_results  # noqa: E402
from multiview.plots.views import BOTH, GAINED, NEITHER, TEACHER_ONLY, learned_matrix, student_codes  # noqa: E402

S, K_CLASSES, T = 4, 3, 6


def _errors(rng: np.random.Generator, n: int, scale: float) -> dict[str, list[float]]:
    single = (scale * rng.uniform(0.5, 1.5, n)).tolist()
    return {"all": [0.1 * e for e in single], "multi_view": [0.0] * n, "single_view": single}


def synthetic_results(seed: int = 0) -> dict:
    """A complete results dict (S = 4 seeds, k = 3 classes) shaped like ``run_protocol``'s."""
    rng = np.random.default_rng(seed)
    cfg = get_preset("smoke").with_overrides({"data.k": K_CLASSES, "n_seeds": S, "data.mu": 0.2})
    learned = np.zeros((S, K_CLASSES, 2), dtype=bool)
    win = rng.integers(0, 2, (S, K_CLASSES))
    learned[np.arange(S)[:, None], np.arange(K_CLASSES)[None, :], win] = True
    learned[0, 0] = True  # one (seed, class) pair with both views
    L0 = rng.uniform(0.001, 0.01, (S, K_CLASSES, 2))
    L0[1, 1, 0] = -0.002  # a negative Λ(0), left out of the ratio plot
    steps = np.arange(T) * 10
    growth = np.exp(np.linspace(0, 6, T))[:, None, None, None]
    Lam = L0[None] * np.where(learned[None], growth, 1.0)
    same = (learned[:, None] == learned[None, :]).all(-1).mean(-1)
    flat = learned.reshape(S, -1).astype(float)
    inter = flat @ flat.T
    jac = inter / (flat.sum(1)[:, None] + flat.sum(1)[None, :] - inter)
    union = learned.any(0, keepdims=True)
    kd_learned = np.ones((S, K_CLASSES, 2), dtype=bool)
    kd_learned[2, 1, 0] = False
    self_learned = learned.copy()
    self_learned[1] = True

    def view_summary(le: np.ndarray) -> dict:
        n = le.sum(-1)
        return {
            "learned": le.tolist(),
            "exactly_one_fraction": float((n == 1).mean()),
            "both_fraction": float((n == 2).mean()),
            "none_fraction": float((n == 0).mean()),
        }

    mem = {
        g: {
            "own_noise": (base * rng.uniform(0.8, 1.2, S)).tolist(),
            "fresh_noise": [0.01] * S,
            "count": [c] * S,
        }
        for g, base, c in (
            ("multi_view", 0.05, 80),
            ("single_dominant_learned", 0.3, 15),
            ("single_dominant_unlearned", 2.0, 5),
        )
    }
    Kc = list(range(1, S + 1))
    single = {
        "test_error": _errors(rng, S, 0.5),
        "train_accuracy": [1.0] * S,
        "explanation": {"errors_explained": [1.0] * S},
        "memorization": mem,
        "history": {
            "step": steps.tolist(),
            "loss": np.ones((T, S)).tolist(),
            "train_accuracy": np.ones((T, S)).tolist(),
            "flow_time": np.repeat(steps[:, None] * 0.5, S, 1).tolist(),
            "Lambda": Lam.tolist(),
            "Phi": Lam.tolist(),
        },
        "views": {
            **view_summary(learned),
            "lottery_agreement": 0.75,
            "lottery": {
                "predicted_winner": L0.argmax(-1).tolist(),
                "by_initial_ratio": {
                    "bin_low": [1.0, 1.5, 2.0],
                    "bin_high": [1.5, 2.0, None],
                    "agreement": [0.5, None, 1.0],
                    "count": [4, 0, 6],
                },
            },
            "Lambda_init": L0.tolist(),
            "Lambda_final": Lam[-1].tolist(),
            "threshold": 0.1,
            "overlap": {
                "same_views": same.tolist(),
                "jaccard": jac.tolist(),
                "mean_same_views": float(same[~np.eye(S, dtype=bool)].mean()),
                "mean_jaccard": float(jac[~np.eye(S, dtype=bool)].mean()),
            },
        },
    }
    curve = {
        "K": Kc,
        "all": [0.02 / k for k in Kc],
        "multi_view": [0.0] * S,
        "single_view": [0.1 / k for k in Kc],
        "covered": [1 - 2.0 ** (1 - k) for k in Kc],
        "predicted_single_view": [2.0**-k for k in Kc],
    }
    results = {
        "config": cfg.to_dict(),
        "single": single,
        "views": single["views"],
        "ensemble": {
            "test_error": _errors(rng, 1, 0.001),
            "K": S,
            "curve": curve,
            "views": {**view_summary(union), "covered_fraction": 1.0},
        },
        "training_average": {"test_error": _errors(rng, 1, 0.4)},
        "kd": {
            "test_error": _errors(rng, S, 0.01),
            "views": {**view_summary(kd_learned), "gained_fraction": 0.9, "covers_teacher_fraction": 0.9},
        },
        "self_kd": {
            "test_error": _errors(rng, S, 0.2),
            "views": {**view_summary(self_learned), "gained_fraction": 0.25, "covers_teacher_fraction": 1.0},
        },
        "ensemble_of_kd": {
            "test_error": _errors(rng, 1, 0.0),
            "K": S,
            "curve": {**curve, "single_view": [0.001] * S},
        },
        "random_features": {
            m: {"test_error": _errors(rng, S, 0.6)} for m in ("single", "ensemble", "training_average", "kd")
        },
    }
    results["bounds"] = json.loads(
        json.dumps(bounds.check(results, cfg), allow_nan=True).replace("NaN", "null")
    )
    return results


@pytest.fixture()
def results() -> dict:
    return synthetic_results()


def _only(results: dict, *stages: str) -> dict:
    keep = {"config", "bounds", *stages}
    return {k: v for k, v in results.items() if k in keep}


# --- overlap --------------------------------------------------------------------------------


def test_learned_views_heatmap_shows_the_learned_matrix(results):
    fig = learned_views_figure(results)
    (ax,) = fig.axes
    data = np.asarray(ax.images[0].get_array())
    expected = np.asarray(results["single"]["views"]["learned"], dtype=float).reshape(S, 2 * K_CLASSES)
    np.testing.assert_array_equal(data, expected)
    assert ax.get_ylabel() == "seed"
    assert "class $i$" in ax.get_xlabel() and "$v_{i,1}$" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3"]
    assert "exactly one" in ax.get_title(loc="left")
    assert ax.images[0].get_cmap().name == "cividis"


def test_learned_matrix_orders_columns_class_major():
    m = learned_matrix([[[True, False], [False, True]]])
    np.testing.assert_array_equal(m, [[1, 0, 0, 1]])


@pytest.mark.parametrize("stage", ["kd", "self_kd"])
def test_learned_views_heatmap_for_students(results, stage):
    fig = learned_views_figure(results, stage)
    np.testing.assert_array_equal(
        fig.axes[0].images[0].get_array(), learned_matrix(results[stage]["views"]["learned"])
    )


@pytest.mark.parametrize("measure", ["same_views", "jaccard"])
def test_pairwise_overlap_is_the_seed_by_seed_matrix(results, measure):
    fig = shared_views_figure(results, measure)
    assert len(fig.axes) == 2  # heatmap and colour bar
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), results["single"]["views"]["overlap"][measure])
    assert ax.get_xlabel() == "seed $b$" and ax.get_ylabel() == "seed $a$"
    assert len(ax.texts) == S * S
    assert "on average" in ax.get_title(loc="left")


def test_coverage_against_ensemble_size_beside_the_prediction(results):
    fig = coverage_figure(results)
    ax_cov, ax_err = fig.axes
    K = np.arange(1, S + 1)
    assert ax_cov.get_xlabel() == "ensemble size $K$" == ax_err.get_xlabel()
    measured, predicted = ax_cov.get_lines()
    np.testing.assert_allclose(measured.get_ydata(), 2.0 ** (1 - K))
    np.testing.assert_allclose(predicted.get_ydata(), 2.0 ** (1 - K))
    labels = [line.get_label() for line in ax_err.get_lines()]
    assert labels == ["ensemble of single models", "ensemble of KD students", "fair coins: $2^{-K}$"]
    np.testing.assert_allclose(ax_err.get_lines()[2].get_ydata(), 2.0**-K)
    assert "covers both views" in fig.get_suptitle()


def test_student_codes():
    student = [[[True, True], [False, False]]]
    teacher = [[[True, False], [True, False]]]
    np.testing.assert_array_equal(student_codes(student, teacher), [[BOTH, GAINED, TEACHER_ONLY, NEITHER]])


def test_students_against_their_teachers(results):
    fig = students_figure(results)
    ax_kd, ax_self = fig.axes
    single = np.asarray(results["single"]["views"]["learned"], dtype=bool)
    kd = np.asarray(results["kd"]["views"]["learned"], dtype=bool)
    teacher = np.broadcast_to(single.any(0), kd.shape)
    np.testing.assert_array_equal(ax_kd.images[0].get_array(), (teacher + 2 * kd).reshape(S, -1))
    own = np.asarray(results["self_kd"]["views"]["learned"], dtype=bool)
    np.testing.assert_array_equal(ax_self.images[0].get_array(), (single + 2 * own).reshape(S, -1))
    assert ax_kd.get_ylabel() == "student"
    assert "Knowledge distillation" in ax_kd.get_title(loc="left")
    assert "Self-distillation" in ax_self.get_title(loc="left")
    # every gained cell carries a "+" so the picture reads without colour
    gained = int(((2 * own + single).reshape(S, -1) == GAINED).sum())
    assert sum(t.get_text() == "+" for t in ax_self.texts) == gained > 0
    assert len(fig.legends[0].get_texts()) == 4


def test_students_figure_with_only_kd(results):
    fig = students_figure(_only(results, "single", "kd"))
    assert len(fig.axes) == 1


def test_views_summary(results):
    fig = views_summary_figure(results)
    assert len(fig.axes) == 3
    fig = views_summary_figure(_only(results, "single"))
    assert len(fig.axes) == 1


# --- dynamics -------------------------------------------------------------------------------


def test_lambda_trajectories_winner_against_loser(results):
    fig = lambda_trajectories_figure(results, seeds=[0, 2], classes=[1, 2])
    assert len(fig.axes) == 4
    lam = np.asarray(results["single"]["history"]["Lambda"])
    learned = np.asarray(results["single"]["views"]["learned"])
    ax = fig.axes[1]  # seed 0, class 2 (index 1... column 1 = class index 2)
    v1, v2, thr = ax.get_lines()
    np.testing.assert_allclose(v1.get_ydata(), lam[:, 0, 2, 0])
    np.testing.assert_allclose(v2.get_ydata(), lam[:, 0, 2, 1])
    np.testing.assert_allclose(v1.get_xdata(), results["single"]["history"]["step"])
    won = int(learned[0, 2].argmax())
    assert [v1, v2][won].get_linestyle() == "-" and [v1, v2][1 - won].get_linestyle() == "--"
    assert v1.get_color() == OKABE_ITO["blue"] and v2.get_color() == OKABE_ITO["orange"]
    assert thr.get_ydata()[0] == pytest.approx(0.1)
    assert fig.axes[0].get_ylabel() == r"$\Lambda_{i,\ell}(t)$"
    assert fig.axes[-1].get_xlabel() == "gradient step $t$"
    assert ax.get_yscale() == "symlog"
    assert f"$v_{{3,{won + 1}}}$ wins" in ax.get_title(loc="left")


def test_lambda_trajectories_defaults_and_flow_time(results):
    fig = lambda_trajectories_figure(results, time="flow_time")
    assert len(fig.axes) == 3 * 3  # first 3 seeds × all 3 classes
    assert "flow time" in fig.axes[-1].get_xlabel()


def test_initial_margin_against_the_view_that_won(results):
    fig = initial_margin_figure(results)
    ax_pts, ax_bins = fig.axes
    n_points = sum(len(c.get_offsets()) for c in ax_pts.collections)
    assert n_points == S * K_CLASSES - 1  # the pair with Λ(0) < 0 is left out
    assert "1 pairs" in ax_pts.get_title(loc="left")
    assert ax_pts.get_xscale() == "log"
    assert r"\Lambda_{i,1}(0)" in ax_pts.get_xlabel() and r"\Lambda_{i,2}(0)" in ax_pts.get_xlabel()
    heights = [p.get_height() for p in ax_bins.patches]
    np.testing.assert_allclose(heights, [0.5, 0.0, 1.0])
    assert [t.get_text() for t in ax_bins.get_xticklabels()] == ["[1, 1.5)", "[1.5, 2)", "[2, ∞)"]
    assert "75%" in fig.get_suptitle()


# --- theorems -------------------------------------------------------------------------------


def test_theorems_figure_shows_every_bound(results):
    fig = theorems_figure(results)
    ax_err, ax_mech = fig.axes
    errs = [b for b in results["bounds"] if b["measured_over_mu"] is not None]
    labels = [t.get_text() for t in ax_err.get_yticklabels()]
    assert len(labels) == len(errs)
    assert labels[-1] == "single model (Thm 1)"
    assert {"ensemble (Thm 2)", "KD from the ensemble (Thm 3)", "self-distillation (Thm 4)"} <= set(labels)
    points = [c for c in ax_err.collections if c.get_gid() == "measured"]
    assert sorted(float(p.get_offsets()[0][0]) for p in points) == pytest.approx(
        sorted(b["measured_over_mu"] for b in errs)
    )
    assert "units of μ" in ax_err.get_xlabel()
    assert len(ax_mech.get_yticklabels()) == 3
    n_judged = sum(b["passed"] is not None for b in results["bounds"])
    assert f"of {n_judged} theorem checks pass" in fig.get_suptitle()


def test_theorems_figure_with_single_stage_only(results):
    r = _only(results, "single")
    r["bounds"] = [b for b in r["bounds"] if b["name"] in ("single_model", "one_view_per_class")]
    fig = theorems_figure(r)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["single model (Thm 1)"]


def test_fixed_features_figure(results):
    fig = fixed_features_figure(results)
    (ax,) = fig.axes
    ticks = [t.get_text().split("\n") for t in ax.get_xticklabels()]
    assert [t[0] for t in ticks] == ["feature learning (CNN)", "random features"]
    assert ax.get_ylabel() == "test error / μ"
    single = ax.containers[0]
    mu = results["config"]["data"]["mu"]
    assert single[0].get_height() == pytest.approx(np.mean(results["single"]["test_error"]["all"]) / mu)
    err = {
        k: np.mean(results["random_features"][k]["test_error"]["all"]) for k in ("single", "ensemble", "kd")
    }
    kd_share = (err["single"] - err["kd"]) / (err["single"] - err["ensemble"])
    assert ticks[1][1].startswith("kept: training avg. ") and ticks[1][1].endswith(f"KD {kd_share:.0%}")
    assert "ensemble's gain" in fig.get_suptitle()


def test_fixed_features_figure_needs_a_fixed_feature_stage(results):
    del results["random_features"]
    with pytest.raises(KeyError, match="random_features"):
        fixed_features_figure(results)


# --- memorization ---------------------------------------------------------------------------


def test_memorization_own_against_fresh_noise(results):
    fig = memorization_figure(results)
    (ax,) = fig.axes
    mem = results["single"]["memorization"]
    own, fresh = ax.containers
    groups = ("multi_view", "single_dominant_learned", "single_dominant_unlearned")
    np.testing.assert_allclose([b.get_height() for b in own], [np.mean(mem[g]["own_noise"]) for g in groups])
    np.testing.assert_allclose(
        [b.get_height() for b in fresh], [np.mean(mem[g]["fresh_noise"]) for g in groups]
    )
    assert own.patches[0].get_facecolor()[:3] == pytest.approx(
        matplotlib.colors.to_rgb(OKABE_ITO["vermillion"])
    )
    assert r"\xi_p" in ax.get_ylabel()
    assert ax.get_yscale() == "log"
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[0].startswith("multi-view") and "80 examples" in ticks[0]


def test_memorization_with_a_missing_group(results):
    results["single"]["memorization"]["single_dominant_unlearned"] = {
        "own_noise": [None] * S,
        "fresh_noise": [None] * S,
        "count": [0] * S,
    }
    fig = memorization_figure(results)
    assert "no examples" in fig.axes[0].get_xticklabels()[2].get_text()


# --- saving and rendering -------------------------------------------------------------------


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
    done = render(_only(results, "single"), ["views"], tmp_path, ["png"])
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
        ("theorems", {"theorems", "fixed_features"}),
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


def test_cli_plot_reports_a_missing_run(tmp_path):
    res = runner.invoke(app, ["plot", "overlap", str(tmp_path / "nowhere")])
    assert res.exit_code != 0
    assert "results.json" in res.output


def test_cli_plot_fails_when_nothing_can_be_drawn(results, tmp_path):
    d = tmp_path / "partial"
    d.mkdir()
    (d / "results.json").write_text(json.dumps(_only(results, "training_average")))
    res = runner.invoke(app, ["plot", "memorization", str(d)])
    assert res.exit_code == 1
    assert "skipped memorization" in res.output


# --- CIFAR runs -----------------------------------------------------------------------------


def cifar_results() -> dict:
    """A CIFAR run's results (3 single models) shaped like ``multiview.cifar.protocol``'s."""
    acc = {"single": [0.90, 0.91, 0.905], "kd": [0.92, 0.921, 0.919], "self_kd": [0.912, 0.915, 0.91]}
    curve = {"K": [1, 2, 3], "accuracy": [0.905, 0.92, 0.93], "all": [0.095, 0.08, 0.07]}
    out = {"mode": "cifar", "config": {"data": {"dataset": "cifar10"}}}
    for key, a in acc.items():
        out[key] = {"test_accuracy": a, "test_error": {"all": [1 - x for x in a]}}
    out["training_average"] = {"test_accuracy": [0.908], "test_error": {"all": [0.092]}}
    out["ensemble"] = {"test_accuracy": [0.93], "test_error": {"all": [0.07]}, "K": 3, "curve": curve}
    out["ensemble_of_kd"] = {"test_accuracy": [0.935], "test_error": {"all": [0.065]}, "K": 3, "curve": curve}
    out["self_kd"]["ensemble"] = {"test_accuracy": [0.93], "curve": curve}
    out["overlap"] = {
        "n_test": 1000,
        "single": {
            "pairwise_jaccard": [[1.0, 0.4, 0.5], [0.4, 1.0, 0.45], [0.5, 0.45, 1.0]],
            "mean_jaccard": 0.45,
            "independent_jaccard": 0.05,
            "missed_by_count": [850, 60, 40, 50],
        },
        "ensemble": {"fixed": 70, "broken": 5},
    }
    out["channel_split"] = {
        "n": [1, 2, 4, 8],
        "channels": 256,
        "cut_after_stage": 2,
        "original": {"test_accuracy": [0.9, 0.91], "ensemble_accuracy": 0.92},
        "single": {str(n): {"test_accuracy": [0.9 - 0.01 * n, 0.9 - 0.01 * n]} for n in (1, 2, 4, 8)},
        "ensemble": {str(n): {"test_accuracy": 0.91 - 0.01 * n} for n in (1, 2, 4, 8)},
    }
    return out


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


# --- on real protocol output ----------------------------------------------------------------


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
