"""`multiview cifar` through typer's test runner: a tiny real run, and its errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from multiview.cli import app

runner = CliRunner()


def test_cifar_command_runs_and_prints_the_paper_table(real_arrays, real_data_path, real_cache_dir, tmp_path):
    out = tmp_path / "run"
    args = [
        "cifar", "--data", str(real_data_path), "--cache-dir", str(real_cache_dir), "--train-subset", "200",
        "--test-subset", "100", "--seeds", "2", "--epochs", "1", "--only", "single,ensemble,self_kd",
        "--set", "fast_width=8", "--set", "batch_size=50", "--set", "tta=0", "--device", "cpu",
        "--threads", "1", "--out", str(out), "--quiet",
    ]  # fmt: skip
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    res = json.loads((out / "results.json").read_text())
    assert set(res) >= {"config", "single", "ensemble", "self_kd", "timing", "environment"}
    assert "kd" not in res and "training_average" not in res
    assert len(res["single"]["test_accuracy"]) == 2 and res["config"]["recipe"]["epochs"] == 1.0
    assert res["config"]["data"]["train_subset"] == 200 and res["config"]["model"]["fast_width"] == 8
    single = res["single"]["test_accuracy"]
    mean = sum(single) / 2
    assert f"{100 * mean:.2f} ±" in result.output  # the paper-style row: mean ± std of the single models
    assert f"{100 * res['ensemble']['test_accuracy'][0]:.2f}%" in result.output
    assert "self-KD" in result.output and (out / "config.toml").exists()
    again = runner.invoke(app, [*args, "--resume"], terminal_width=200)
    assert again.exit_code == 0, again.output
    assert json.loads((out / "results.json").read_text())["single"]["cached"] == [True, True]


def test_bad_setting_names_the_field(tmp_path):
    result = runner.invoke(app, ["cifar", "--data", str(tmp_path), "--set", "lr=-2"])
    assert result.exit_code != 0
    assert "recipe.lr" in result.output


def test_unknown_arch_is_refused(tmp_path):
    result = runner.invoke(app, ["cifar", "--data", str(tmp_path), "--arch", "vgg11"])
    assert result.exit_code != 0 and "unknown architecture" in result.output


def test_missing_data_is_a_clear_error(tmp_path):
    result = runner.invoke(
        app,
        [
            "cifar",
            "--data",
            str(tmp_path / "none"),
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "o"),
            "--quiet",
        ],
    )
    assert result.exit_code == 2
    assert "does not exist: expected torchvision's cifar-10-batches-py" in result.output


def test_download_needs_torchvision(tmp_path, monkeypatch):
    import multiview.cifar.data as data_mod

    real = data_mod.importlib.import_module

    def no_torchvision(name, *a, **k):
        if name.startswith("torchvision"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(data_mod.importlib, "import_module", no_torchvision)
    result = runner.invoke(
        app,
        [
            "cifar",
            "--data",
            str(tmp_path / "cifar"),
            "--download",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2 and "needs torchvision" in result.output
