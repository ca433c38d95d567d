"""`multiview cifar` through typer's test runner: a tiny run (on the data the tests write), and its
errors."""

from __future__ import annotations

import json

from cifar_helpers import tar_folder, write_cifar10_batches
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from multiview.cli import app

runner = CliRunner()


def test_cifar_command_runs_and_prints_the_paper_table(tiny_data, tmp_path):
    out = tmp_path / "run"
    data, cache = tiny_data
    args = [
        "cifar", "--data", str(data), "--cache-dir", str(cache), "--train-subset", "200",
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


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.05, 1.0), noise=st.binary(min_size=1, max_size=16), at=st.floats(0.0, 1.0))
def test_a_damaged_archive_is_a_named_data_error_or_still_reads(tmp_path_factory, cut, noise, at):
    folder = tmp_path_factory.mktemp("damaged")
    write_cifar10_batches(folder / "src", per_batch=4, n_test=10)
    blob = tar_folder(
        folder / "src" / "cifar-10-batches-py", folder / "good.tar.gz", "cifar-10-batches-py"
    ).read_bytes()
    damaged = blob[: max(1, int(len(blob) * cut))]
    i = int(at * (len(damaged) - 1))
    damaged = damaged[:i] + noise + damaged[i + len(noise) :]
    data = folder / "cifar-10.tar.gz"
    data.write_bytes(damaged)
    tiny = "--only single --seeds 1 --epochs 0.05 --set fast_width=4 --set batch_size=10 --set tta=0"
    tiny = [*tiny.split(), "--device", "cpu", "--threads", "1", "--quiet"]
    where = ["--data", str(data), "--cache-dir", str(folder / "cache"), "--out", str(folder / "run")]
    result = runner.invoke(app, ["cifar", *where, *tiny])
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 2), (result.exception, result.output)
    if result.exit_code == 2:
        assert "error: data:" in result.stderr and str(data) in " ".join(result.stderr.split())
