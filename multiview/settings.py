"""Settings: the base of every configuration (the simulator's, CIFAR's, a sweep spec's).

A settings tree is a :class:`Settings` dataclass whose fields are sections (:class:`Section`
dataclasses) and a few top-level values. It is written once here for all of them:

* **conversion**: a value from TOML or ``--set`` is converted by its field's annotation
  (:func:`coerce`: ``int``, ``float``, ``str``, ``bool``, ``X | None``, ``tuple[X, ...]``,
  ``tuple[float, float]``, ``list[str]``, ``dict``), the same way everywhere;
* **checks**: each class declares ``constraints`` (field → :class:`Constraint`, in the manner of
  scikit-learn's ``_parameter_constraints``) and may add cross-field rules in ``check``; every
  failure is a :class:`ConfigError` that names the key (``data.mu``) and says what is allowed;
* **keys**: dotted (``data.mu``), or bare (``mu``) where one section alone has the name;
  ``--set key=value`` reads the value as TOML, else as text (:func:`parse_assignment`);
* **files**: ``to_dict``, ``to_toml``, ``from_dict``, ``load_toml`` and a ``config_hash`` of what
  determines results.

This module imports no torch.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import tomllib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import tomli_w

from multiview.files import digest


class ConfigError(ValueError):
    """A setting is invalid; the message names the key and what is allowed."""


# --------------------------------------------------------------------------------------------
# Constraints
# --------------------------------------------------------------------------------------------

Bound = Any  # a number, or a function of the section that holds the field (a cross-field bound)


def _resolve(bound: Bound, owner: Any) -> Any:
    return bound(owner) if callable(bound) else bound


class Constraint:
    """What a field's value must satisfy; ``check`` raises :class:`ConfigError` naming the key."""

    def check(self, key: str, value: Any, owner: Any) -> None:
        raise NotImplementedError


INT64_MAX = 2**63 - 1
"""The largest integer a setting may hold (what a 64-bit tensor index or seed can take)."""


@dataclass(frozen=True)
class Integer(Constraint):
    """An integer (not a bool) ≥ ``low`` and ≤ 2⁶³ − 1; ``why`` explains the bound in the message."""

    low: Bound = 0
    why: str = ""

    def check(self, key: str, value: Any, owner: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} = {value!r}: must be an integer")
        if value > INT64_MAX:
            raise ConfigError(f"{key} = {value}: must be at most 2^63 − 1")
        low = _resolve(self.low, owner)
        if value < low:
            extra = f" ({self.why})" if self.why else ""
            raise ConfigError(f"{key} = {value}: must be at least {low}{extra}")


@dataclass(frozen=True)
class Number(Constraint):
    """A finite number (not a bool, not NaN) in [low, high], or (low, high] with ``open_low``."""

    low: Bound = 0.0
    high: Bound = math.inf
    open_low: bool = False

    def check(self, key: str, value: Any, owner: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ConfigError(f"{key} = {value!r}: must be a number")
        if math.isinf(value):
            raise ConfigError(f"{key} = {value}: must be a finite number")
        low, high = _resolve(self.low, owner), _resolve(self.high, owner)
        if (value <= low if self.open_low else value < low) or value > high:
            lo = f"({low}" if self.open_low else f"[{low}"
            hi = "∞)" if math.isinf(high) else f"{high}]"
            raise ConfigError(f"{key} = {value}: must be in {lo}, {hi}")


Positive = Number(0.0, math.inf, open_low=True)


@dataclass(frozen=True)
class OneOf(Constraint):
    """One of ``values`` (a bool never is, even where 0 or 1 are allowed)."""

    values: tuple[Any, ...]

    def check(self, key: str, value: Any, owner: Any) -> None:
        if isinstance(value, bool) or value not in self.values:
            raise ConfigError(f"{key} = {value!r}: must be one of {', '.join(str(a) for a in self.values)}")


@dataclass(frozen=True)
class SomeOf(Constraint):
    """A non-empty sequence of which each item is one of ``values`` (e.g. the stages to run)."""

    values: tuple[Any, ...]

    def check(self, key: str, value: Any, owner: Any) -> None:
        if not value:
            raise ConfigError(f"{key} is empty: name at least one of " + ", ".join(self.values))
        for item in value:
            OneOf(self.values).check(key, item, owner)


@dataclass(frozen=True)
class Interval(Constraint):
    """A pair (low, high) with 0 ≤ low ≤ high."""

    def check(self, key: str, value: Any, owner: Any) -> None:
        if not (isinstance(value, tuple) and len(value) == 2):
            raise ConfigError(f"{key} = {value!r}: must be an interval [low, high]")
        low, high = value
        if low < 0:
            raise ConfigError(f"{key} = [{low}, {high}]: the low end must be ≥ 0")
        if low > high:
            raise ConfigError(f"{key} = [{low}, {high}]: the interval is out of order (low > high)")


@dataclass(frozen=True)
class Boolean(Constraint):
    """True or false."""

    def check(self, key: str, value: Any, owner: Any) -> None:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} = {value!r}: must be true or false")


@dataclass(frozen=True)
class NonEmpty(Constraint):
    """A string with something in it."""

    def check(self, key: str, value: Any, owner: Any) -> None:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{key} = {value!r}: must be a non-empty string")


@dataclass(frozen=True)
class Rule(Constraint):
    """A check of its own: ``rule(key, value)`` raises :class:`ConfigError` when the value is bad."""

    rule: Callable[[str, Any], None]

    def check(self, key: str, value: Any, owner: Any) -> None:
        self.rule(key, value)


# --------------------------------------------------------------------------------------------
# Conversion by annotation
# --------------------------------------------------------------------------------------------


def coerce(key: str, value: Any, hint: Any) -> Any:
    """``value`` (from TOML or ``--set``) as the type ``hint``, or a :class:`ConfigError` naming the
    key. ``none`` means None where the type allows it; a list type takes a list, a comma-separated
    string (brackets allowed) or one value; ``tuple[float, float]`` takes exactly two numbers."""
    try:
        return _convert(value, hint)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{key} = {value!r}: expected {describe(hint)}") from None


def _is_none(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.lower() == "none")


def _items(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [v.strip() for v in value.strip("[]()").split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _convert(value: Any, hint: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return None if _is_none(value) else _convert(value, inner)
    if _is_none(value):
        raise ValueError(value)
    if origin is tuple and args[-1] is Ellipsis:
        return tuple(_convert(v, args[0]) for v in _items(value))
    if origin is tuple:
        items = _items(value)
        if len(items) != len(args):
            raise ValueError(value)
        return tuple(_convert(v, a) for v, a in zip(items, args, strict=True))
    if origin is list:
        return [_convert(v, args[0]) for v in _items(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(value)
        return dict(value)
    if hint is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise TypeError(value)
        return value
    if hint is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise TypeError(value)
        return int(value)
    if hint is float:
        if isinstance(value, bool):
            raise TypeError(value)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(value)
        return value
    raise NotImplementedError(f"no conversion to {hint}")


def describe(hint: Any) -> str:
    """What a field of type ``hint`` accepts, for error messages."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return f"{describe(inner)} or none"
    if origin is tuple and args[-1] is not Ellipsis:
        return "an interval [low, high] of two numbers"
    if origin in (tuple, list):
        return {str: "a list of names", int: "a list of integers", float: "a list of numbers"}[args[0]]
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a table"}
    return names.get(origin or hint, "a value")


# --------------------------------------------------------------------------------------------
# Sections and settings trees
# --------------------------------------------------------------------------------------------


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The annotation of each dataclass field of ``cls`` (resolved from text)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


class Section:
    """A dataclass of settings: its ``constraints`` (field → :class:`Constraint`, checked in that
    order; None values are not checked), then its cross-field rules (:meth:`check`). ``section``
    is its name in its tree (``data``), the prefix of its keys in messages."""

    section: ClassVar[str] = ""
    constraints: ClassVar[dict[str, Constraint]] = {}

    def validate(self) -> Self:
        prefix = f"{self.section}." if self.section else ""
        for name, constraint in self.constraints.items():
            value = getattr(self, name)
            if value is not None:
                constraint.check(prefix + name, value, self)
        self.check()
        return self

    def check(self) -> None:
        """Rules between fields (a subclass adds its own)."""


class Settings(Section):
    """A tree of settings: sections (fields whose type is a :class:`Section`) and top-level values.

    ``noun`` names a key in error messages (``unknown config key 'data.nope'``).
    """

    noun: ClassVar[str] = "config key"

    # --- keys ----------------------------------------------------------------------------------

    @classmethod
    def sections(cls) -> dict[str, type[Section]]:
        return {
            name: t for name, t in field_types(cls).items() if isinstance(t, type) and issubclass(t, Section)
        }

    @classmethod
    def top_level(cls) -> list[str]:
        return [name for name in field_types(cls) if name not in cls.sections()]

    @classmethod
    def all_keys(cls) -> list[str]:
        """Every ``section.field``, then the top-level names sorted."""
        keys = [f"{sec}.{name}" for sec, t in cls.sections().items() for name in field_types(t)]
        return keys + sorted(cls.top_level())

    @classmethod
    def resolve_key(cls, key: str) -> str:
        """``mu`` → ``data.mu`` when one section alone has the name; dotted and top-level keys are
        returned as given."""
        if "." in key or key in cls.top_level():
            return key
        owners = [sec for sec, t in cls.sections().items() if key in field_types(t)]
        if len(owners) == 1:
            return f"{owners[0]}.{key}"
        if not owners:
            raise ConfigError(f"unknown {cls.noun} {key!r}; known keys: {', '.join(cls.all_keys())}")
        raise ConfigError(
            f"{cls.noun} {key!r} is ambiguous: say one of " + ", ".join(f"{o}.{key}" for o in owners)
        )

    @classmethod
    def _field(cls, key: str) -> tuple[str | None, str, Any]:
        """(section or None, field, annotation) of a resolved key, or an error naming what exists."""
        if key in cls.top_level():
            return None, key, field_types(cls)[key]
        section, _, name = key.partition(".")
        sections = cls.sections()
        if section not in sections or "." in name:
            raise ConfigError(f"unknown {cls.noun} {key!r}; sections are {', '.join(sections)}")
        types_ = field_types(sections[section])
        if name not in types_:
            raise ConfigError(f"unknown {cls.noun} {key!r}; {section} has: {', '.join(types_)}")
        return section, name, types_[name]

    def get(self, key: str) -> Any:
        """The value of a (dotted or bare) key."""
        section, name, _ = self._field(self.resolve_key(key))
        return getattr(self if section is None else getattr(self, section), name)

    def set(self, key: str, value: Any) -> None:
        """Set a (dotted or bare) key, converting ``value`` by the field's type (not validated)."""
        key = self.resolve_key(key)
        section, name, hint = self._field(key)
        setattr(self if section is None else getattr(self, section), name, coerce(key, value, hint))

    # --- checks --------------------------------------------------------------------------------

    def validate(self) -> Self:
        """Every section's checks, then the top-level values'; returns the settings."""
        for name in self.sections():
            getattr(self, name).validate()
        return super().validate()

    # --- copies and files ----------------------------------------------------------------------

    def with_overrides(self, overrides: Mapping[str, Any]) -> Self:
        """A validated copy with dotted or bare key overrides applied (``{"data.mu": 0.2}``)."""
        out = copy.deepcopy(self)
        for key, value in overrides.items():
            out.set(key, value)
        return out.validate()

    def to_dict(self) -> dict[str, Any]:
        return plain(dataclasses.asdict(self))

    def to_toml(self) -> str:
        return tomli_w.dumps(drop_none(self.to_dict()))

    def identity(self) -> dict[str, Any]:
        """The settings that determine results (all of them, unless a subclass says otherwise)."""
        return self.to_dict()

    def config_hash(self, exclude: tuple[str, ...] = ()) -> str:
        """A stable 16-hex-digit hash of :meth:`identity`, optionally without whole sections."""
        return digest({k: v for k, v in self.identity().items() if k not in exclude})

    @classmethod
    def starting_point(cls, raw: dict[str, Any], base: Self | None) -> Self:
        """What a file's values apply to: ``base``, or the defaults (a subclass may read a preset or
        recipe named in ``raw``, removing that entry)."""
        return copy.deepcopy(base) if base is not None else cls()

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], base: Self | None = None) -> Self:
        """Validated settings from nested plain data (a saved ``config``); unknown keys are errors."""
        raw = dict(raw)
        start = cls.starting_point(raw, base)
        return start.with_overrides(flatten_sections(raw, cls.sections()))

    @classmethod
    def load_toml(cls, path: str | Path, base: Self | None = None) -> Self:
        return cls.from_dict(read_toml(path), base)


# --------------------------------------------------------------------------------------------
# Plain data, TOML and --set
# --------------------------------------------------------------------------------------------


def plain(obj: Any) -> Any:
    """Nested dicts, lists and tuples as dicts and lists (for JSON and TOML)."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


def drop_none(obj: Any) -> Any:
    """Nested dicts without their None values (TOML has no null)."""
    if isinstance(obj, dict):
        return {k: drop_none(v) for k, v in obj.items() if v is not None}
    return obj


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one dict of dotted keys: ``{"data": {"mu": 0.1}}`` → ``{"data.mu": 0.1}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(dotted key, old value, new value) of every key whose value differs between two nested
    dicts (a key one of them lacks counts, with the missing side None), in ``new``'s order."""
    a, b = flatten(old), flatten(new)
    keys = list(b) + [k for k in a if k not in b]
    return [(k, a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)]


def flatten_sections(raw: Mapping[str, Any], sections: Sequence[str] | Mapping[str, Any]) -> dict[str, Any]:
    """``{"data": {"mu": 0.1}, "seed": 0}`` → ``{"data.mu": 0.1, "seed": 0}``; a section's value
    must be a table."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key in sections:
            if not isinstance(value, dict):
                raise ConfigError(f"[{key}] must be a table of settings, got {value!r}")
            flat.update({f"{key}.{sub}": v for sub, v in value.items()})
        else:
            flat[key] = value
    return flat


def read_toml(path: str | Path) -> dict[str, Any]:
    """The tables of a TOML file; a missing or malformed file is a :class:`ConfigError`."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder: give a .toml file") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text, so not TOML") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def parse_assignment(text: str) -> tuple[str, Any]:
    """``key=value`` (``--set``, ``--where``): the value is read as a TOML value, else as text."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. data.mu=0.2")
    key, _, value = text.partition("=")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return key.strip(), parsed


def parse_sets(items: Sequence[str] | None) -> dict[str, Any]:
    """``["data.mu=0.2", "n_seeds=3"]`` → ``{"data.mu": 0.2, "n_seeds": 3}``."""
    return dict(parse_assignment(item) for item in items or [])
