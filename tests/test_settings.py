"""The settings base: one conversion, declared constraints, keys, files, the --set grammar."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from multiview.cifar.config import CifarConfig
from multiview.config import SimConfig
from multiview.settings import (
    ConfigError,
    Constraint,
    Integer,
    Interval,
    NonEmpty,
    Number,
    OneOf,
    Section,
    Settings,
    SomeOf,
    coerce,
    differences,
    flatten,
    flatten_sections,
    parse_assignment,
    parse_sets,
)
from multiview.sweep.spec import SpecError, SpecTables


@dataclass
class Box(Section):
    section: ClassVar[str] = "box"
    width: int = 2
    height: float = 1.0
    color: str = "red"
    label: str | None = None
    span: tuple[float, float] = (0.0, 1.0)
    tags: tuple[str, ...] = ("a",)
    sizes: tuple[int, ...] = (1, 2)
    constraints: ClassVar[dict[str, Constraint]] = {
        "width": Integer(1),
        "height": Number(0.0, lambda box: float(box.width), open_low=True),
        "color": OneOf(("red", "blue")),
        "label": NonEmpty(),
        "span": Interval(),
        "tags": SomeOf(("a", "b")),
    }

    def check(self) -> None:
        if self.color == "blue" and self.width > 3:
            raise ConfigError("box.width: a blue box is at most 3 wide")


@dataclass
class Shop(Settings):
    box: Box = field(default_factory=Box)
    seed: int = 0
    constraints: ClassVar[dict[str, Constraint]] = {"seed": Integer(0)}


# --- conversion by annotation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "hint", "expected"),
    [
        ("3", int, 3),
        (3.0, int, 3),
        (2, float, 2.0),
        ("0.5", float, 0.5),
        ("TRUE", bool, True),
        ("none", float | None, None),
        (0.1, float | None, 0.1),
        ("single, ensemble", tuple[str, ...], ("single", "ensemble")),
        (["single"], tuple[str, ...], ("single",)),
        ("kd", tuple[str, ...], ("kd",)),
        ("[1, 2]", tuple[int, ...], (1, 2)),
        (4, tuple[int, ...], (4,)),
        ([1, 3], tuple[float, float], (1.0, 3.0)),
        ("1,3", tuple[float, float], (1.0, 3.0)),
        ({"a": 1}, dict[str, Any], {"a": 1}),
        (["x"], list[str], ["x"]),
    ],
)
def test_values_convert_by_their_annotation(value, hint, expected):
    assert coerce("k", value, hint) == expected


@pytest.mark.parametrize(
    ("value", "hint", "message"),
    [
        ("ten", int, "k = 'ten': expected an integer"),
        (2.5, int, "expected an integer"),
        (True, int, "expected an integer"),
        (True, float, "expected a number"),
        ("maybe", bool, "expected true or false"),
        (3, str, "expected a string"),
        ("none", str, "expected a string"),
        ("x", float | None, "expected a number or none"),
        ([1.0], tuple[float, float], "expected an interval [low, high] of two numbers"),
        ("a,b", tuple[int, ...], "expected a list of integers"),
        (3, dict[str, Any], "expected a table"),
        (10**400, float, "expected a number"),  # beyond float range
        ([1, 10**400], tuple[float, float], "expected an interval"),
    ],
)
def test_bad_values_name_the_key_and_the_type(value, hint, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        coerce("k", value, hint)


def test_the_same_set_parses_the_same_way_in_every_config():
    """``--set`` values are converted by one rule, whichever settings they go to."""
    sets = parse_sets(["stages=single,ensemble", "seed=3"])
    assert SimConfig().with_overrides(sets).protocol.stages == ("single", "ensemble")
    assert CifarConfig().with_overrides(sets).protocol.stages == ("single", "ensemble")
    for cfg in (SimConfig(), CifarConfig()):
        assert cfg.with_overrides(sets).seed == 3
        with pytest.raises(ConfigError, match="seed = 'many': expected an integer"):
            cfg.with_overrides({"seed": "many"})


# --- constraints ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("width", 0, "box.width = 0: must be at least 1"),
        ("height", 3.0, r"box.height = 3.0: must be in \(0.0, 2.0\]"),  # a bound from another field
        ("height", 0.0, r"must be in \(0.0"),
        ("color", "green", "box.color = 'green': must be one of red, blue"),
        ("label", "", "box.label = '': must be a non-empty string"),
        ("span", (2.0, 1.0), "out of order"),
        ("span", (-1.0, 1.0), "the low end must be ≥ 0"),
        ("tags", (), "box.tags is empty: name at least one of a, b"),
        ("tags", ("c",), "box.tags = 'c': must be one of a, b"),
    ],
)
def test_declared_constraints_name_the_key_and_what_is_allowed(key, value, message):
    with pytest.raises(ConfigError, match=message):
        Shop().with_overrides({f"box.{key}": value})


def test_none_skips_the_constraints_and_rules_run_after_them():
    assert Shop().with_overrides({"label": None}).box.label is None
    with pytest.raises(ConfigError, match="a blue box is at most 3 wide"):
        Shop().with_overrides({"color": "blue", "width": 4})
    assert Number().check("x", 1e300, None) is None
    with pytest.raises(ConfigError, match="must be a number"):
        Number().check("x", math.nan, None)
    with pytest.raises(ConfigError, match="must be a finite number"):
        Number().check("x", math.inf, None)


def test_a_section_validates_alone_under_its_own_name():
    with pytest.raises(ConfigError, match="box.width = 0"):
        Box(width=0).validate()


def test_every_section_knows_its_name_in_its_tree():
    for tree in (SimConfig, CifarConfig, SpecTables):
        for name, section in tree.sections().items():
            assert section.section == name, (tree, name)


# --- keys -------------------------------------------------------------------------------------


def test_dotted_bare_and_top_level_keys():
    assert Shop.all_keys() == [
        "box.width",
        "box.height",
        "box.color",
        "box.label",
        "box.span",
        "box.tags",
        "box.sizes",
        "seed",
    ]
    assert Shop.resolve_key("width") == "box.width" and Shop.resolve_key("seed") == "seed"
    shop = Shop().with_overrides({"width": 3, "box.height": 2})
    assert shop.get("width") == 3 and shop.get("box.height") == 2.0
    with pytest.raises(ConfigError, match="unknown config key 'depth'; known keys: box.width"):
        Shop.resolve_key("depth")
    with pytest.raises(ConfigError, match="unknown config key 'box.depth'; box has: width, height"):
        Shop().with_overrides({"box.depth": 1})
    with pytest.raises(ConfigError, match="unknown config key 'crate.width'; sections are box"):
        Shop().with_overrides({"crate.width": 1})


def test_a_name_in_two_sections_is_ambiguous():
    with pytest.raises(ConfigError, match="'device' is ambiguous: say one of local.device, slurm.device"):
        SpecTables.resolve_key("device")


# --- files and hashes -------------------------------------------------------------------------


def test_dict_toml_and_back(tmp_path):
    shop = Shop().with_overrides({"width": 3, "tags": "a,b"})
    assert shop.to_dict()["box"]["tags"] == ["a", "b"]
    assert "label" not in shop.to_toml()  # TOML has no null
    path = tmp_path / "shop.toml"
    path.write_text(shop.to_toml())
    back = Shop.load_toml(path)
    assert back == shop and back.config_hash() == shop.config_hash()
    assert Shop.from_dict({"box": {"width": 3, "tags": ["a", "b"]}}) == shop


def test_hashes_see_every_value_and_can_leave_sections_out():
    a, b = Shop(), Shop().with_overrides({"seed": 1})
    assert a.config_hash() != b.config_hash()
    assert a.config_hash(exclude=("box",)) != b.config_hash(exclude=("box",))
    c = Shop().with_overrides({"width": 5})
    assert a.config_hash() != c.config_hash() and a.config_hash(exclude=("box",)) == c.config_hash(
        exclude=("box",)
    )


def test_a_section_must_be_a_table_and_files_must_exist(tmp_path):
    with pytest.raises(ConfigError, match=r"\[box\] must be a table of settings"):
        Shop.from_dict({"box": 3})
    with pytest.raises(ConfigError, match="does not exist"):
        Shop.load_toml(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("[box\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Shop.load_toml(tmp_path / "bad.toml")
    (tmp_path / "latin1.toml").write_bytes(b"[box]\ncolor = '\xe9'\n")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        Shop.load_toml(tmp_path / "latin1.toml")
    with pytest.raises(ConfigError, match="is a folder"):
        Shop.load_toml(tmp_path)


def test_integers_stop_at_int64():
    assert Integer().check("n", 2**63 - 1, None) is None
    with pytest.raises(ConfigError, match=r"n = 9223372036854775808: must be at most 2\^63"):
        Integer().check("n", 2**63, None)


def test_differences_name_dotted_keys_in_order():
    old = {"data": {"mu": 0.1, "k": 6}, "seed": 0, "protocol": {"stages": ["single"]}}
    new = {"data": {"mu": 0.2, "k": 6}, "seed": 1, "protocol": {"stages": ["single"]}, "extra": 3}
    assert flatten(new) == {"data.mu": 0.2, "data.k": 6, "seed": 1, "protocol.stages": ["single"], "extra": 3}
    assert differences(old, new) == [("data.mu", 0.1, 0.2), ("seed", 0, 1), ("extra", None, 3)]
    assert differences(new, new) == []


def test_flatten_sections():
    assert flatten_sections({"data": {"mu": 0.1}, "seed": 3}, ["data"]) == {"data.mu": 0.1, "seed": 3}


# --- the --set grammar ------------------------------------------------------------------------


def test_set_values_are_toml_else_text():
    assert parse_assignment(" data.mu = 0.2 ") == ("data.mu", 0.2)
    assert parse_assignment("split=even") == ("split", "even")
    assert parse_assignment("n=[1, 2]") == ("n", [1, 2])
    assert parse_sets(None) == {}
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_assignment("mu")


def test_one_error_type():
    assert issubclass(SpecError, ConfigError) and issubclass(ConfigError, ValueError)
