"""Sweep specs: expansion into units, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from sweep_helpers import run_cli, spec_text, write_spec

from multiview.config import get_preset
from multiview.sweep.spec import SpecError, load_spec, parse_spec


def _spec(body: str, extra: str = ""):
    return parse_spec(f'[sweep]\npreset = "smoke"\n{body}\n{extra}')


def test_grid_expands_points_times_seeds_with_config_hash_keys():
    spec = _spec(
        'seeds = [0, 5]\nstages = "single,ensemble"\n[sweep.parameters]\nmu = [0.1, 0.2]\n'
        '"data.rho" = {start = 0.1, stop = 0.3, num = 3}'
    )
    units = spec.units()
    assert spec.swept_keys == ["data.mu", "data.rho"]
    assert len(units) == 2 * 3 * 2
    assert sorted({u.params["data.rho"] for u in units}) == [0.1, 0.2, 0.3]  # no float noise
    base = get_preset("smoke")
    for u in units:
        expected = base.with_overrides({**u.params, "seed": u.seed, "protocol.stages": "single,ensemble"})
        assert u.key == expected.config_hash() == u.config.config_hash()
        assert u.config.protocol.stages == ("single", "ensemble")
    assert len({u.key for u in units}) == len(units)


def test_ranges_step_log_integers_and_nested_tables():
    spec = _spec(
        "seeds = 2\n[sweep.parameters.model]\nm = {start = 2, stop = 8, step = 2}\n"
        "sigma_0 = {start = 0.001, stop = 0.1, num = 3, log = true}\n"
        "[sweep.parameters.data]\nk = {start = 3, stop = 4, num = 4}"
    )
    by_key = {p.key: p.values for p in spec.parameters}
    assert by_key["model.m"] == [2, 4, 6, 8]
    assert by_key["model.sigma_0"] == pytest.approx([0.001, 0.01, 0.1])
    assert by_key["data.k"] == [3, 4]  # integer field: rounded, duplicates dropped
    assert spec.seeds == [0, 1]
    assert len(spec.units()) == 4 * 3 * 2 * 2


def test_random_mode_is_reproducible_and_inside_the_ranges():
    body = (
        'mode = "random"\nsamples = 6\nsample_seed = 3\n[sweep.parameters]\n'
        'mu = {start = 0.05, stop = 0.3}\n"model.m" = [2, 3]\n'
        '"model.sigma_0" = {start = 0.001, stop = 0.1, log = true}'
    )
    a, b = _spec(body).points(), _spec(body).points()
    assert a == b and len(a) == 6
    assert all(0.05 <= p["data.mu"] <= 0.3 and p["model.m"] in (2, 3) for p in a)
    assert all(0.001 <= p["model.sigma_0"] <= 0.1 for p in a)
    assert _spec(body.replace("sample_seed = 3", "sample_seed = 4")).points() != a


def test_spec_file_paths_and_defaults(tmp_path):
    (tmp_path / "base.toml").write_text("[data]\nmu = 0.25\n")
    path = tmp_path / "my_sweep.toml"
    path.write_text('[sweep]\npreset = "smoke"\nconfig = "base.toml"\n[sweep.parameters]\nrho = [0.1]\n')
    spec = load_spec(path)
    assert spec.name == "my_sweep"
    assert str(spec.out) == "runs/sweeps/my_sweep"
    assert spec.base.data.mu == 0.25
    assert spec.seeds == [spec.base.seed]


BAD = [
    (
        '[sweep.parameters]\n"data.mu" = []',
        "sweep.parameters.data.mu: values must be a non-empty list or {start, stop, num}",
    ),
    ('[sweep.parameters]\n"data.mu" = 0.2', "sweep.parameters.data.mu: values must be a non-empty list"),
    (
        '[sweep.parameters]\n"data.mu" = [0.1, 2.0]',
        "sweep.parameters.data.mu: value 2 is not allowed: data.mu = 2.0",
    ),
    ('[sweep.parameters]\n"data.nope" = [1]', "sweep.parameters.data.nope: unknown config key"),
    ('[sweep.parameters]\nmu = [0.1]\n"data.mu" = [0.2]', "sweep.parameters.data.mu: data.mu is given twice"),
    (
        '[sweep.parameters]\n"data.rho" = {start = 0.1, stop = 0.3}',
        "sweep.parameters.data.rho: values must be",
    ),
    (
        '[sweep.parameters]\n"data.rho" = {start = 0.1, stop = 0.3, count = 3}',
        "sweep.parameters.data.rho.count",
    ),
    ('[sweep.parameters]\n"data.rho" = {start = 0.1, stop = 0.3, num = 0}', "sweep.parameters.data.rho.num"),
    (
        '[sweep.parameters]\n"data.rho" = {start = 0, stop = 1, num = 3, log = true}',
        "sweep.parameters.data.rho: log",
    ),
    ("[sweep.parameters]\nseed = [1, 2]", "sweep.parameters.seed: the master seed is swept with sweep.seeds"),
    (
        '[sweep.parameters]\n"data.C_p" = [1, 4]\n"data.P" = [4, 8]',
        "sweep.parameters: the point data.C_p=4, data.P=4 is not a valid config: data.P = 4",
    ),
    ("seeds = [-1]\n[sweep.parameters]\nmu = [0.1]", "sweep.seeds"),
    ("seeds = [1, 1]\n[sweep.parameters]\nmu = [0.1]", "sweep.seeds"),
    ('stages = ["single", "bogus"]\n[sweep.parameters]\nmu = [0.1]', "sweep.stages: unknown stage 'bogus'"),
    ('mode = "lhs"\n[sweep.parameters]\nmu = [0.1]', "sweep.mode = 'lhs': must be one of grid, random"),
    ('mode = "random"\n[sweep.parameters]\nmu = [0.1]', "sweep.samples: mode = 'random' needs"),
    ("samples = 3\n[sweep.parameters]\nmu = [0.1]", "sweep.samples: only used with mode = 'random'"),
    ("bogus = 1\n[sweep.parameters]\nmu = [0.1]", "unknown spec key 'sweep.bogus'"),
    ('[sweep.set]\n"data.mu" = 5\n[sweep.parameters]\nrho = [0.1]', "sweep.set: data.mu = 5"),
    ("[sweep.parameters]\nmu = [0.1]\n[slurm]\ntime_min = 0", "slurm.time_min = 0: must be at least 1"),
    (
        "[sweep.parameters]\nmu = [0.1]\n[slurm]\npartition = 3",
        "slurm.partition = 3: expected a string or none",
    ),
    ("[sweep.parameters]\nmu = [0.1]\n[slurm]\ngpus = 1", "unknown spec key 'slurm.gpus'"),
    ('[sweep.parameters]\nmu = [0.1]\n[local]\ndevice = "tpu"', "local.device = 'tpu'"),
    ("[sweep.parameters]\nmu = [0.1]\n[cluster]\nx = 1", "unknown spec key 'cluster'"),
]


@pytest.mark.parametrize(
    "body, message", BAD, ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(BAD)]
)
def test_bad_specs_name_the_field(body, message):
    with pytest.raises(SpecError) as err:
        _spec(body)
    assert message in str(err.value)


def test_bad_preset_and_toml():
    with pytest.raises(SpecError, match="sweep.preset: unknown preset 'nope'"):
        parse_spec('[sweep]\npreset = "nope"\n[sweep.parameters]\nmu = [0.1]')
    with pytest.raises(SpecError, match="not valid TOML"):
        parse_spec("[sweep\n")
    with pytest.raises(SpecError, match="needs a \\[sweep\\] table"):
        parse_spec("[local]\nworkers = 1\n")


def test_cli_reports_a_bad_spec_with_its_field(tmp_path):
    path = write_spec(tmp_path / "bad.toml", tmp_path / "out", '"data.mu" = []')
    result = run_cli("sweep", path)
    assert result.exit_code == 2
    assert "sweep.parameters.data.mu" in result.output
    assert not (tmp_path / "out").exists()


def test_spec_text_helper_is_valid(tmp_path):
    spec = parse_spec(spec_text(tmp_path, '"data.mu" = [0.1, 0.2]'))
    assert len(spec.units()) == 2


def test_example_specs_in_scripts_are_valid():
    root = Path(__file__).resolve().parents[2] / "scripts" / "sweeps"
    specs = sorted(root.glob("*.toml"))
    assert {p.stem for p in specs} >= {"mu_rho", "mu_rho_demo", "sigma0_varrho", "s_Gamma", "k_m"}
    for path in specs:
        spec = load_spec(path)
        assert len(spec.swept_keys) >= 1 and spec.units(), path
