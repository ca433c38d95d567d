"""The table's metrics and the phase diagram, on hand-made results."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from multiview.sweep.collect import METRICS, unit_metrics
from multiview.sweep.phase import PhaseError, axis_label, phase_grid, plot_phase


def _results(single, ensemble, kd=None, bounds=()):
    res = {
        "single": {
            "test_error": {"all": single, "single_view": [2 * e for e in single], "multi_view": single}
        },
        "ensemble": {"test_error": {"all": [ensemble], "single_view": [0.0], "multi_view": [0.0]}},
        "views": {"exactly_one_fraction": 0.75, "lottery_agreement": 0.9},
        "bounds": [{"name": f"b{i}", "passed": p} for i, p in enumerate(bounds)],
        "timing": {"total": 12.5},
    }
    if kd is not None:
        res["kd"] = {"test_error": {"all": kd, "single_view": kd, "multi_view": kd}}
    return res


def test_unit_metrics():
    m = unit_metrics(_results([0.1, 0.2, 0.3], 0.05, kd=[0.08, 0.12], bounds=(True, False, None, True)))
    assert set(m) == set(METRICS)
    assert m["error_single"] == pytest.approx(0.2)
    assert m["single_view_error"] == pytest.approx(0.4)
    assert m["ensemble_gain"] == pytest.approx(0.15)
    assert m["kd_gain"] == pytest.approx(0.1)
    assert math.isnan(m["self_kd_gain"]) and math.isnan(m["training_average_gain"])
    assert m["bound_pass_rate"] == pytest.approx(2 / 3) and m["bounds_judged"] == 3
    assert (m["exactly_one_fraction"], m["lottery_agreement"], m["wall_seconds"]) == (0.75, 0.9, 12.5)
    assert math.isnan(unit_metrics(_results([0.1], 0.1, bounds=(None,)))["bound_pass_rate"])


def _table():
    rows = []
    for mu in (0.1, 0.2):
        for rho in (0.1, 0.3):
            for seed in (0, 1):
                rows.append(
                    {
                        "unit": f"{mu}{rho}{seed}",
                        "status": "done",
                        "data.mu": mu,
                        "data.rho": rho,
                        "data.s": 2.0,
                        "seed": seed,
                        "ensemble_gain": mu + rho + seed,
                    }
                )
    return pd.DataFrame(rows)


def test_phase_grid_averages_over_master_seeds_and_pins_other_parameters(tmp_path):
    grid = phase_grid(_table(), "data.mu", "data.rho", "ensemble_gain")
    assert grid.xs == [0.1, 0.2] and grid.ys == [0.1, 0.3]
    assert grid.values[1][0] == pytest.approx(0.1 + 0.3 + 0.5)
    assert grid.counts == [[2, 2], [2, 2]]
    # master seeds 0 and 1 differ by 1: sd/√2 = 0.5, times t_{0.975, 1}
    assert grid.half_widths[1][0] == pytest.approx(12.706204736174707 * 0.5)
    paths = plot_phase(grid, tmp_path, ("png", "pdf"), "viridis")
    assert [p.name for p in paths] == ["phase_ensemble_gain_mu_rho.png", "phase_ensemble_gain_mu_rho.pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)

    df = pd.concat([_table(), _table().assign(**{"data.s": 4.0})])
    with pytest.raises(PhaseError, match="data.s .* pin them with --where"):
        phase_grid(df, "data.mu", "data.rho", "ensemble_gain")
    pinned = phase_grid(df, "data.mu", "data.rho", "ensemble_gain", {"data.s": 4.0})
    assert pinned.counts == [[2, 2], [2, 2]]
    with pytest.raises(PhaseError, match="--metric nope"):
        phase_grid(df, "data.mu", "data.rho", "nope")
    with pytest.raises(PhaseError, match="--y model.m: not a column"):
        phase_grid(df, "data.mu", "model.m", "ensemble_gain")
    with pytest.raises(PhaseError, match="colour-blind"):
        plot_phase(grid, tmp_path, ("png",), "jet")


def test_axis_labels_use_the_paper_symbols():
    assert axis_label("data.rho") == r"$\rho$  (data.rho)"
    assert axis_label("model.varrho").startswith(r"$\varrho$")
    assert axis_label("train.delta") == "train.delta"
