"""`multiview simulate` end to end through typer's test runner, and its errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from multiview import stages
from multiview.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    result = runner.invoke(
        app, ["simulate", "--preset", "smoke", "--out", str(out), "--device", "cpu", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    return out, result.output


def test_simulate_writes_results_with_the_documented_keys(smoke_run):
    out, output = smoke_run
    res = json.loads((out / "results.json").read_text())
    S = res["config"]["n_seeds"]
    k = res["config"]["data"]["k"]
    for key in ("all", "multi_view", "single_view"):
        assert len(res["single"]["test_error"][key]) == S
    assert len(res["single"]["train_accuracy"]) == S
    learned = res["views"]["learned"]
    assert len(learned) == S and len(learned[0]) == k and len(learned[0][0]) == 2
    assert 0.0 <= res["views"]["exactly_one_fraction"] <= 1.0
    assert 0.0 <= res["views"]["lottery_agreement"] <= 1.0
    assert res["timing"]["total"] > 0
    for stage in (
        "ensemble",
        "training_average",
        "kd",
        "self_kd",
        "ensemble_of_kd",
        "random_features",
        "ntk",
    ):
        assert stage in res, stage
    names = {b["name"] for b in res["bounds"]}
    assert {"single_model", "ensemble", "knowledge_distillation", "self_distillation"} <= names
    for b in res["bounds"]:
        assert {"name", "claim", "measured", "measured_over_mu", "bound", "ci95", "passed"} <= set(b)
    assert (out / "config.toml").exists()
    assert "Theorem checks" in output and "Single models" in output


def test_config_saved_with_results_reproduces_the_run(smoke_run, tmp_path):
    out, _ = smoke_run
    again = tmp_path / "again"
    result = runner.invoke(
        app,
        [
            "simulate",
            "--config",
            str(out / "config.toml"),
            "--only",
            "single",
            "--out",
            str(again),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    a = json.loads((out / "results.json").read_text())
    b = json.loads((again / "results.json").read_text())
    assert a["single"]["test_error"] == b["single"]["test_error"]
    assert a["views"]["learned"] == b["views"]["learned"]


def test_bad_set_is_a_clear_error(tmp_path):
    result = runner.invoke(
        app, ["simulate", "--preset", "smoke", "--set", "data.mu=7", "--out", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert "data.mu" in result.output and "[0.0, 1.0]" in result.output


def test_unknown_preset_and_stage(tmp_path):
    result = runner.invoke(app, ["simulate", "--preset", "nope", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "unknown preset" in result.output
    result = runner.invoke(
        app, ["simulate", "--preset", "smoke", "--only", "single,magic", "--out", str(tmp_path)]
    )
    assert result.exit_code != 0 and "protocol.stages" in result.output


def test_presets_and_config_commands():
    result = runner.invoke(app, ["presets"])
    assert result.exit_code == 0 and "paper" in result.output and "smoke" in result.output
    result = runner.invoke(app, ["config", "--preset", "smoke", "--set", "data.mu=0.3"])
    assert result.exit_code == 0 and "mu = 0.3" in result.output


def test_piped_output_gets_wide_tables(monkeypatch, capsys):
    from multiview.terminal import PIPED_WIDTH, make_console

    monkeypatch.delenv("COLUMNS", raising=False)
    assert make_console().width == PIPED_WIDTH  # pytest captures stdout: not a terminal
    monkeypatch.setenv("COLUMNS", "100")
    assert make_console().width == 100


# --- refusals, resume, interrupts, help -------------------------------------------------------


def test_resume_into_a_folder_of_another_config_is_refused_naming_the_keys(smoke_run):
    out, _ = smoke_run
    before = (out / "results.json").read_bytes()
    for extra in (["--resume"], []):
        result = runner.invoke(
            app,
            ["simulate", "--preset", "smoke", "--set", "data.mu=0.3", "--out", str(out), "--quiet", *extra],
        )
        assert result.exit_code == 2
        assert "data.mu (0.2 there, 0.3 now)" in result.stderr and "--overwrite" in result.stderr
    assert (out / "results.json").read_bytes() == before


def test_overwrite_replaces_a_run_and_a_resume_may_add_stages(tmp_path):
    out = str(tmp_path / "run")
    args = ["simulate", "--preset", "smoke", "--only", "single", "--out", out, "--quiet"]
    assert runner.invoke(app, args).exit_code == 0
    more = runner.invoke(app, [*args[:4], "single,ensemble", *args[5:], "--resume"])  # other stages: allowed
    assert more.exit_code == 0, more.output
    assert "single: loaded from checkpoint" not in more.output  # --quiet: no progress lines
    other = [*args, "--set", "seed=1"]
    assert runner.invoke(app, other).exit_code == 2
    replaced = runner.invoke(app, [*other, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert json.loads((tmp_path / "run" / "results.json").read_text())["config"]["seed"] == 1


def test_ctrl_c_exits_130_naming_the_command_that_resumes(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("multiview.protocol.run_protocol", interrupted)
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["simulate", "--preset", "smoke", "--set", "data.mu=0.3", "--out", str(out), "--quiet"]
    )
    assert result.exit_code == 130
    assert "Traceback" not in result.output
    assert f"multiview simulate --preset smoke --set data.mu=0.3 --out {out} --resume --quiet" in " ".join(
        result.stderr.split()
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"schema": 1, "config": {"da', "is not valid JSON"),
        (b"\xff\xfe\x00", "is not UTF-8 text"),
        (b'{"schema": 1}', "is not a results.json of multiview"),
        (b"[1, 2, 3]", "holds a JSON list"),
    ],
)
def test_report_refuses_a_damaged_or_foreign_results_json_by_name(tmp_path, content, message):
    path = tmp_path / "results.json"
    path.write_bytes(content)
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and message in result.stderr and str(path) in " ".join(result.stderr.split())


def test_report_marks_a_partial_run(smoke_run, tmp_path):
    out, _ = smoke_run
    res = json.loads((out / "results.json").read_text())
    for stage in ("kd", "kd_onehot", "self_kd", "ensemble_of_kd", "random_features", "ntk"):
        del res[stage]
    res["complete"] = False
    (tmp_path / "results.json").write_text(json.dumps(res))
    result = runner.invoke(app, ["report", str(tmp_path)])
    text = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 0 and "PARTIAL RUN (complete: false)" in text
    assert "not run yet: kd, kd_onehot, self_kd, ensemble_of_kd, random_features, ntk" in text
    assert f"--out{tmp_path}--resume" in "".join(text.split())


def test_version():
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"multiview {version('multiview')}"


@pytest.mark.parametrize("width", [80, 120])
def test_help_keeps_bracketed_words_and_lists_every_choice(width):
    text = runner.invoke(app, ["simulate", "--help"], env={"COLUMNS": str(width)}).output
    flat = "".join(text.replace("│", "").split())  # words broken over lines at narrow widths
    for word in (
        "[data]",
        "[model]",
        "[train]",
        "[probes]",
        "[protocol]",
        "float32|float64",
        "[auto|cpu|cuda[:N]]",
        "(needsthetensorboardpackage:pipinstalltensorboard)",
    ):
        assert word in flat, word
    for stage in stages.names(stages.SYNTHETIC):
        assert stage in flat, stage
    assert "--threads" in text and "waitpolicyPASSIVE" in flat and "…" not in text and "(thepreset's)" in flat
    sweep = runner.invoke(app, ["sweep", "--help"], env={"COLUMNS": str(width)}).output
    sweep = "".join(sweep.replace("│", "").split())
    assert sweep.count("[slurm]") == 3 and "multiview[slurm]" in sweep and "local|slurm" in sweep


def test_a_refused_command_answers_before_torch_or_matplotlib_is_imported():
    import subprocess
    import sys

    code = (
        "import sys\nfrom multiview.cli import app\ntry:\n    app(['simulate', '--set', 'data.mu=7'])\n"
        "except SystemExit as exc:\n    print(exc.code, 'torch' in sys.modules, 'matplotlib' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["2", "False", "False"], done.stderr
    assert "data.mu = 7.0: must be in [0.0, 1.0]" in done.stderr


COMMANDS = [
    *([name] for name in ("simulate", "report", "config", "presets", "sweep", "collect", "cifar", "plot")),
    *(["plot", name] for name in ("views", "dynamics", "phase", "theorems")),
    [],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "multiview")
def test_no_help_text_is_cut_at_80_or_120_columns(command):
    for width in ("80", "120"):
        result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": width})
        assert result.exit_code == 0 and "…" not in result.output, (width, result.output)


def test_simulate_with_jobs_runs_stages_in_worker_processes(tmp_path, smoke_run):
    """``--jobs 2``: the header names the processes and their threads, ``environment`` records
    them, and the numbers are those of the run in one process."""
    out = tmp_path / "two"
    args = ["simulate", "--preset", "smoke", "--out", str(out), "--device", "cpu", "--threads", "2"]
    result = runner.invoke(app, [*args, "--jobs", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "jobs=2×1 threads" in result.output
    two = json.loads((out / "results.json").read_text())
    one = json.loads((smoke_run[0] / "results.json").read_text())
    assert two["environment"]["jobs"] == 2 and two["environment"]["threads_per_job"] == 1
    assert one["environment"]["jobs"] == 1
    assert two["single"]["test_error"] == one["single"]["test_error"]
    assert json.dumps(two["bounds"]) == json.dumps(one["bounds"])  # NaN as NaN
    refused = runner.invoke(app, [*args, "--jobs", "-1"])
    assert refused.exit_code == 2 and "--jobs" in refused.output
