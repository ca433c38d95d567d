"""Every path of the command line ends in success or a named refusal, never a traceback.

Property-based (hypothesis): generated bad values for every config key (from the constraints the
settings declare) and for every option of ``simulate``, and corrupted results, config and spec
files, driven through typer's runner in this process. A refusal is exit status 2 with an
``error:`` (or typer's usage) message on stderr; a crash would be exit status 1 with the
exception kept by the runner.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from multiview import stages
from multiview.config import SimConfig, get_preset
from multiview.device import check_device
from multiview.presets import PRESETS
from multiview.settings import (
    Boolean,
    ConfigError,
    Integer,
    Interval,
    NonEmpty,
    Number,
    OneOf,
    SomeOf,
    field_types,
)

runner = CliRunner()
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FILES = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def invoke(*args: Any):
    """Run ``multiview ARGS``; the run must end in success (0) or a refusal (2) on stderr."""
    result = runner.invoke(app_(), [str(a) for a in args])
    text = result.output
    assert "Traceback" not in text, text
    assert result.exit_code in (0, 2), (args, result.exit_code, result.exception, text)
    if result.exit_code == 2:
        assert result.stderr.strip(), f"refused without a message on stderr: {args}"
    return result


def app_():
    from multiview.cli import app

    return app


def toml_value(value: Any) -> str:
    """``value`` as the inline TOML text ``--set key=TEXT`` reads back as that value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


@pytest.fixture()
def no_runs(monkeypatch):
    """Starting a protocol run is a test failure: the commands here must refuse before."""

    def refuse(*args, **kwargs):
        raise AssertionError("the command should have refused its input before running")

    monkeypatch.setattr("multiview.protocol.run_protocol", refuse)


# --------------------------------------------------------------------------------------------
# Bad values of every config key, from the declared constraints
# --------------------------------------------------------------------------------------------

KEYS = SimConfig.all_keys()
DEFAULT = get_preset("default")


def _field(key: str) -> tuple[Any, Any, Any]:
    """(constraint or None, annotation, the section holding the key in the default config)."""
    if "." not in key:
        return SimConfig.constraints.get(key), field_types(SimConfig)[key], DEFAULT
    section, name = key.split(".")
    cls = SimConfig.sections()[section]
    return cls.constraints.get(name), field_types(cls)[name], getattr(DEFAULT, section)


def _bound(bound: Any, owner: Any) -> Any:
    return bound(owner) if callable(bound) else bound


def wrong_types(hint: Any) -> st.SearchStrategy[Any]:
    """Values of another type than the field's (TOML can write them all)."""
    text = st.text(min_size=1, max_size=8).filter(
        lambda t: t.strip().lower() not in ("none", "true", "false")
    )
    table = st.just({"a": 1})
    hint_text = str(hint)
    if hint is bool:
        return st.one_of(st.integers(), text, st.floats(allow_nan=False), table)
    if hint is int or hint_text == "int | None":
        return st.one_of(text.filter(lambda t: not t.strip().lstrip("+-").isdigit()), st.just(1.5), table)
    if hint is float or hint_text == "float | None":
        return st.one_of(text.filter(_not_number), st.booleans(), table, st.just([1.0]), st.just(10**400))
    if hint is str:
        return st.one_of(st.integers(), st.booleans(), st.just([1, 2]), table)
    if "tuple[float, float]" in hint_text:
        return st.one_of(st.just([1.0]), st.just([1.0, 2.0, 3.0]), st.just(["a", "b"]), table)
    if "tuple[str, ...]" in hint_text:
        return st.one_of(st.just([1, 2]), table, st.booleans())
    return st.one_of(table, st.just([[1]]))


def _not_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return True
    return False


def out_of_range(constraint: Any, owner: Any) -> st.SearchStrategy[Any] | None:
    """Values of the field's type that its declared constraint refuses."""
    if isinstance(constraint, Integer):
        low = _bound(constraint.low, owner)
        return st.one_of(st.integers(max_value=low - 1, min_value=low - 10**6), st.just(2**63))
    if isinstance(constraint, Number):
        low, high = _bound(constraint.low, owner), _bound(constraint.high, owner)
        outside = [st.just(math.nan), st.just(math.inf), st.just(-math.inf)]
        if math.isfinite(low):
            outside.append(
                st.floats(max_value=low, exclude_max=not constraint.open_low, allow_infinity=False)
            )
        if math.isfinite(high):
            outside.append(st.floats(min_value=high, exclude_min=True, allow_infinity=False))
        return st.one_of(*outside)
    if isinstance(constraint, OneOf):
        return st.text(max_size=12).filter(lambda t: t not in constraint.values and t.lower() != "none")
    if isinstance(constraint, SomeOf):
        unknown = st.text(min_size=1, max_size=12).filter(
            lambda t: t not in constraint.values and "," not in t
        )
        return st.one_of(st.just([]), st.lists(unknown, min_size=1, max_size=3))
    if isinstance(constraint, Interval):
        return st.one_of(
            st.tuples(st.floats(0, 10), st.floats(0, 10)).filter(lambda p: p[0] > p[1]).map(list),
            st.tuples(st.floats(-10, -0.01), st.floats(0, 10)).map(list),
        )
    if isinstance(constraint, NonEmpty):
        return st.just("")
    if isinstance(constraint, Boolean):
        return None  # every non-bool is a wrong type
    return None


@st.composite
def bad_assignment(draw: st.DrawFn) -> tuple[str, Any]:
    key = draw(st.sampled_from(KEYS))
    constraint, hint, owner = _field(key)
    strategies = [wrong_types(hint)]
    refused = out_of_range(constraint, owner)
    if refused is not None:
        strategies.append(refused)
    return key, draw(st.one_of(*strategies))


def _refused(key: str, value: Any) -> bool:
    """Whether the config itself refuses ``key = value`` (the oracle for the command line)."""
    try:
        DEFAULT.with_overrides({key: value})
    except ConfigError:
        return True
    return False


@FAST
@given(bad_assignment())
def test_every_config_key_refuses_bad_values_by_name(assignment):
    key, value = assignment
    assert _refused(key, value), f"{key} = {value!r} was accepted"
    result = invoke("config", "--set", f"{key}={toml_value(value)}")
    assert result.exit_code == 2
    assert key in result.stderr or "--set" in result.stderr


@FAST
@given(st.sampled_from(KEYS), st.text(max_size=20))
def test_any_text_for_any_key_is_accepted_or_refused(key, text):
    invoke("config", "--set", f"{key}={text}")


# --------------------------------------------------------------------------------------------
# Bad values of every option of simulate (refused before any run starts)
# --------------------------------------------------------------------------------------------

STAGES = stages.names(stages.SYNTHETIC)


def _device_refused(name: str) -> bool:
    try:
        check_device("--device", name)
    except ConfigError:
        return True
    return name.startswith("cuda")  # this test machine has no GPU


def _not_an_int_from(low: int):
    """A text the option refuses: not an integer as click reads one ("-0", "+3" and " 2" are), or
    one below ``low``."""

    def refused(text: str) -> bool:
        try:
            return int(text) < low
        except ValueError:
            return True

    return refused


BAD_OPTIONS = st.one_of(
    st.integers(max_value=0).map(lambda n: ["--seeds", str(n)]),
    st.text(min_size=1, max_size=6).filter(_not_an_int_from(1)).map(lambda t: ["--seeds", t]),
    st.text(max_size=10).filter(lambda t: t not in ("float32", "float64")).map(lambda t: ["--dtype", t]),
    st.integers(max_value=-1).map(lambda n: ["--threads", str(n)]),
    st.text(max_size=8).filter(_not_an_int_from(0)).map(lambda t: ["--threads", t]),
    st.integers(max_value=-1).map(lambda n: ["--jobs", str(n)]),
    st.text(max_size=8).filter(_not_an_int_from(0)).map(lambda t: ["--jobs", t]),
    st.text(max_size=10).filter(_device_refused).map(lambda t: ["--device", t]),
    st.lists(st.sampled_from([*STAGES, "magic", "", "kd ", "NTK"]), min_size=1, max_size=4)
    .filter(lambda names: not {n.strip() for n in names} - {""} <= set(STAGES) or not "".join(names).strip())
    .map(lambda names: ["--only", ",".join(names)]),
    st.text(max_size=10).filter(lambda t: t not in PRESETS).map(lambda t: ["--preset", t]),
    st.text(max_size=12).filter(lambda t: "=" not in t).map(lambda t: ["--set", t]),
)


@FAST
@given(BAD_OPTIONS)
def test_bad_options_of_simulate_are_refused_before_a_run(no_runs, tmp_path, option):
    assume(not (option[0] == "--preset" and option[1].strip() == ""))
    result = invoke("simulate", "--preset", "smoke", *option, "--out", tmp_path / "run", "--quiet")
    assert result.exit_code == 2


def test_out_that_cannot_be_a_folder_is_refused(no_runs, tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    for out in (file, file / "sub", Path("/proc/multiview-test")):
        for command in (["simulate", "--preset", "smoke"], ["cifar", "--data", tmp_path]):
            result = invoke(*command, "--out", out, "--device", "cpu", "--quiet")
            assert result.exit_code == 2 and "--out" in result.stderr, result.output
    assert file.read_text() == "x"


# --------------------------------------------------------------------------------------------
# Corrupted files
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory) -> dict[str, Any]:
    import torch

    from multiview.protocol import run_protocol

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_protocol(get_preset("smoke"), "cpu", tmp_path_factory.mktemp("smoke"))
    finally:
        torch.set_num_threads(threads)


def _paths(tree: Any, prefix: tuple = (), depth: int = 4) -> list[tuple]:
    """The paths (tuples of keys and indices) into a JSON tree down to ``depth`` levels (where
    readers look), the first items of lists only."""
    out = [prefix] if prefix else []
    if len(prefix) >= depth:
        return out
    if isinstance(tree, dict):
        for key, value in tree.items():
            out += _paths(value, (*prefix, key), depth)
    elif isinstance(tree, list) and tree:
        out += _paths(tree[0], (*prefix, 0), depth)
    return out


JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.just([]),
    st.just({}),
    st.just([[1, "a"]]),
)


@st.composite
def corrupted_results(draw: st.DrawFn, results: dict[str, Any]) -> bytes:
    """A results.json that is damaged: cut short, bytes overwritten, or a value replaced or removed."""
    text = json.dumps(results).encode()
    how = draw(st.sampled_from(["truncate", "bytes", "replace", "delete", "top"]))
    if how == "truncate":
        return text[: draw(st.integers(0, len(text) - 1))]
    if how == "bytes":
        at = draw(st.integers(0, len(text) - 1))
        return text[:at] + draw(st.binary(min_size=1, max_size=8)) + text[at + 8 :]
    if how == "top":
        return json.dumps(draw(st.one_of(JSON_VALUES, st.lists(st.integers())))).encode()
    tree = json.loads(text)
    path = draw(st.sampled_from(_paths(tree)))
    node = tree
    for key in path[:-1]:
        node = node[key]
    if how == "delete" and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = draw(JSON_VALUES)
    return json.dumps(tree).encode()


@FILES
@given(data=st.data())
def test_report_on_a_corrupted_results_json_refuses_or_reports(smoke_results, data):
    blob = data.draw(corrupted_results(smoke_results))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "results.json"
        path.write_bytes(blob)
        for extra in ([], ["--markdown"]):
            result = invoke("report", folder, *extra)
            if result.exit_code == 2:
                assert str(path) in result.stderr or folder in result.stderr


@settings(max_examples=6, deadline=None)
@given(data=st.data())
def test_plot_on_a_corrupted_results_json_refuses_or_draws(smoke_results, data):
    blob = data.draw(corrupted_results(smoke_results))
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "results.json").write_bytes(blob)
        invoke("plot", "theorems", folder, "--format", "png", "--out", Path(folder) / "figures")


@FILES
@given(st.one_of(st.binary(max_size=60), st.text(max_size=60).map(str.encode)))
def test_a_corrupted_config_file_refuses_or_loads(blob):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.toml"
        path.write_bytes(blob)
        result = invoke("config", "--config", path)
        if result.exit_code == 2:
            assert "config" in result.stderr


SPEC_TABLES = st.fixed_dictionaries(
    {
        "sweep": st.fixed_dictionaries(
            {"preset": st.sampled_from(["smoke", "nope", 3])},
            optional={
                "seeds": st.one_of(
                    st.integers(-2, 3), st.lists(st.integers(-1, 3), max_size=3), st.text(max_size=3)
                ),
                "parameters": st.dictionaries(
                    st.sampled_from(["data.mu", "mu", "nope", "model.m"]),
                    st.one_of(st.lists(st.floats(-1, 2), max_size=3), st.integers(), st.just({"start": 0})),
                    max_size=2,
                ),
                "mode": st.sampled_from(["grid", "random", "spiral"]),
                "stages": st.lists(st.sampled_from(["single", "kd", "magic"]), max_size=2),
            },
        )
    },
    optional={
        "local": st.fixed_dictionaries(
            {}, optional={"workers": st.integers(-1, 2), "device": st.text(max_size=5)}
        )
    },
)


@FILES
@given(SPEC_TABLES)
def test_sweep_dry_run_on_any_spec_refuses_or_plans_and_writes_nothing(spec):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "spec.toml"
        path.write_text(tomli_w.dumps(spec))
        out = Path(folder) / "sweep"
        invoke("sweep", path, "--dry-run", "--out", out)
        assert not out.exists()
