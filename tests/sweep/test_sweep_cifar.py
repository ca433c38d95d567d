"""CIFAR runs as sweep units: a spec with protocol = "cifar", run locally, collected, loaded."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sweep_helpers import run_cli

import multiview
from multiview.files import read_json
from multiview.sweep.spec import SpecError, parse_spec
from multiview.sweep.store import SweepStore


def write_cifar10(root, n_train=100, n_test=40):
    """A small data set in torchvision's cifar-10-batches-py layout (random images)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def batch(n):
        return {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": [i % 10 for i in range(n)],
        }

    for b in range(1, 6):
        (folder / f"data_batch_{b}").write_bytes(pickle.dumps(batch(n_train // 5), protocol=2))
    (folder / "test_batch").write_bytes(pickle.dumps(batch(n_test), protocol=2))
    names = [f"class{i}".encode() for i in range(10)]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}, protocol=2))
    return folder


def cifar_spec(out, data, cache) -> str:
    return f"""
[sweep]
name = "cifar_seeds"
protocol = "cifar"
recipe = "fast"
stages = ["single", "ensemble"]
seeds = [0, 1]
out = "{out}"

[sweep.set]
"data.path" = "{data}"
"data.cache_dir" = "{cache}"
"protocol.seeds" = 2
"model.fast_width" = 4
"recipe.batch_size" = 50
"recipe.tta" = 0

[sweep.parameters]
"recipe.epochs" = [1]

[local]
workers = 1
threads = 1
device = "cpu"
"""


def test_cifar_master_seeds_run_as_units_and_collect_per_model(tmp_path):
    data = write_cifar10(tmp_path / "data")
    out = tmp_path / "sweep"
    spec = tmp_path / "cifar.toml"
    spec.write_text(cifar_spec(out, data.parent.name, tmp_path / "cache"))  # data.path relative to the spec
    result = run_cli("sweep", spec, "--quiet")
    assert result.exit_code == 0, result.output
    store = SweepStore(out)
    keys = store.keys()
    assert len(keys) == 2 and all(store.is_done(k) for k in keys)
    for key in keys:
        res = read_json(store.results_path(key))
        assert res["mode"] == "cifar" and res["config"]["data"]["path"] == str(data.parent)
        assert (store.unit_dir(key) / "models" / "single" / "001.pt").exists()
        assert not list((store.unit_dir(key) / "models").glob("*/*.partial.pt"))
    assert run_cli("collect", out).exit_code == 0
    table = pd.read_csv(out / "table.csv")
    assert sorted(table.seed) == [0, 1] and list(table["recipe.epochs"]) == [1, 1]
    for _, row in table.iterrows():
        res = read_json(store.results_path(row.unit))
        assert row.error_single == pytest.approx(np.mean(res["single"]["test_error"]["all"]))
        assert row.ensemble_gain == pytest.approx(row.error_single - res["ensemble"]["test_error"]["all"][0])
    tidy = multiview.load(out)
    assert len(tidy) == 2 * (2 + 1) and set(tidy.stratum) == {"all"} and set(tidy.learner) == {"fast"}
    assert list(tidy.columns[:3]) == ["run", "seed", "recipe.epochs"]
    pd.testing.assert_frame_equal(tidy, pd.read_parquet(out / "tidy.parquet"))


def test_a_cifar_spec_names_its_mistakes(tmp_path):
    base = '[sweep]\nprotocol = "cifar"\nseeds = 1\n[sweep.parameters]\n"recipe.epochs" = [1]\n'
    assert parse_spec(base).base.recipe.name == "fast"
    with pytest.raises(SpecError, match="sweep.preset: a CIFAR sweep starts from a recipe"):
        parse_spec(base.replace("seeds = 1", 'seeds = 1\npreset = "smoke"'))
    with pytest.raises(SpecError, match="sweep.recipe: only a CIFAR sweep"):
        parse_spec('[sweep]\nrecipe = "fast"\nseeds = 1\n[sweep.parameters]\n"data.mu" = [0.1]\n')
    with pytest.raises(SpecError, match="sweep.stages: unknown stage 'kd_onehot'"):
        parse_spec(base.replace("seeds = 1", 'seeds = 1\nstages = ["kd_onehot"]'))
    with pytest.raises(SpecError, match="sweep.parameters.data.mu: unknown config key"):
        parse_spec(base.replace('"recipe.epochs" = [1]', '"data.mu" = [0.1]'))
