"""Checks, conversions and dotted keys shared by the configurations (:mod:`multiview.config`,
:mod:`multiview.cifar.config`) and the sweep specs (:mod:`multiview.sweep.spec`).

Every check takes the field's full name (``data.mu``) and raises an error that names it and what
is allowed (:class:`ConfigError` unless the caller passes its own). This module imports no torch.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and what is allowed."""


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def int_at_least(name: str, value: Any, low: int, why: str | None = None) -> None:
    """``value`` is an integer (not a bool) ≥ ``low``; ``why`` explains the bound in the message."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} = {value!r}: must be an integer")
    if value < low:
        extra = f" ({why})" if why else ""
        raise ConfigError(f"{name} = {value}: must be at least {low}{extra}")


def in_range(name: str, value: Any, low: float, high: float, open_low: bool = False) -> None:
    """``value`` is a number (not a bool, not NaN) in [low, high], or (low, high] with ``open_low``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(f"{name} = {value!r}: must be a number")
    if (value <= low if open_low else value < low) or value > high:
        lo = f"({low}" if open_low else f"[{low}"
        hi = "∞)" if math.isinf(high) else f"{high}]"
        raise ConfigError(f"{name} = {value}: must be in {lo}, {hi}")


def interval(name: str, value: Any) -> None:
    """``value`` is a pair (low, high) with 0 ≤ low ≤ high."""
    if not (isinstance(value, tuple) and len(value) == 2):
        raise ConfigError(f"{name} = {value!r}: must be an interval [low, high]")
    low, high = value
    if low < 0:
        raise ConfigError(f"{name} = [{low}, {high}]: the low end must be ≥ 0")
    if low > high:
        raise ConfigError(f"{name} = [{low}, {high}]: the interval is out of order (low > high)")


def boolean(name: str, value: Any, error: type[Exception] = ConfigError) -> None:
    """``value`` is true or false; ``error`` is the exception raised otherwise."""
    if not isinstance(value, bool):
        raise error(f"{name} = {value!r}: must be true or false")


def choice(name: str, value: Any, allowed: tuple[Any, ...]) -> None:
    """``value`` is one of ``allowed`` (a bool never is, even where 0 or 1 are allowed)."""
    if isinstance(value, bool) or value not in allowed:
        raise ConfigError(f"{name} = {value!r}: must be one of {', '.join(str(a) for a in allowed)}")


def choices(name: str, values: Sequence[Any], allowed: tuple[str, ...]) -> None:
    """``values`` is not empty and each of them is one of ``allowed`` (e.g. the stages to run)."""
    if not values:
        raise ConfigError(f"{name} is empty: name at least one of " + ", ".join(allowed))
    for value in values:
        choice(name, value, allowed)


# --------------------------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------------------------


def coerce(key: str, value: Any, ftype: Any, lenient: bool = False) -> Any:
    """Convert a TOML / ``--set`` value to a field's type (its annotation, e.g. ``"float | None"``),
    or raise :class:`ConfigError` naming the field.

    Strict (the default): ``none`` means None where the type allows it; a ``tuple[str`` field takes
    a comma-separated string; a ``tuple[float`` field is an interval of exactly two numbers.
    ``lenient``: strings are read as integers and numbers as strings, any ``tuple[T, ...]`` takes
    one value, a list or a comma-separated string (brackets allowed) of T, and ``none`` is not
    special.
    """
    ftype = str(ftype)
    try:
        if lenient and ftype.startswith("tuple["):
            inner = ftype[len("tuple[") :].split(",")[0].strip()
            if isinstance(value, str):
                value = [v.strip() for v in value.strip("[]()").split(",") if v.strip()]
            elif not isinstance(value, (list, tuple)):
                value = [value]
            return tuple(coerce(key, v, inner, lenient) for v in value)
        if ftype.startswith("tuple[str"):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            return tuple(str(v) for v in value)
        if ftype.startswith("tuple[float"):
            if isinstance(value, str):
                value = [float(v) for v in value.split(",")]
            if len(value) != 2:
                raise ValueError
            return (float(value[0]), float(value[1]))
        if not lenient and (value is None or (isinstance(value, str) and value.lower() == "none")):
            if "None" in ftype:
                return None
            raise ValueError
        if ftype.startswith("bool"):
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if not isinstance(value, bool):
                raise ValueError
            return value
        if ftype.startswith("int"):
            if lenient and isinstance(value, str):
                value = float(value)
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if ftype.startswith("float"):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if ftype.startswith("str"):
            if lenient and isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError):
        pass
    else:
        return value
    raise ConfigError(f"{key} = {value!r}: expected {describe_type(ftype, lenient)}")


def describe_type(ftype: str, lenient: bool = False) -> str:
    """What a field of type ``ftype`` accepts, for error messages (``lenient``: as :func:`coerce`)."""
    if lenient and ftype.startswith("tuple"):
        return "a list"
    if ftype.startswith("tuple[float"):
        return "an interval [low, high] of two numbers"
    if ftype.startswith("tuple[str"):
        return "a list of names"
    if ftype.startswith("bool"):
        return "true or false"
    if ftype.startswith("int"):
        return "an integer"
    if "None" in ftype:
        return "a number or none"
    if ftype.startswith("float"):
        return "a number"
    return "a string"


def read_toml(path: str | Path) -> dict[str, Any]:
    """The tables of a TOML config file; a missing or malformed file is a :class:`ConfigError`."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


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


# --------------------------------------------------------------------------------------------
# Dotted keys
# --------------------------------------------------------------------------------------------


def flatten_sections(raw: Mapping[str, Any], sections: Mapping[str, Any]) -> dict[str, Any]:
    """``{"data": {"mu": 0.1}, "seed": 0}`` → ``{"data.mu": 0.1, "seed": 0}``; a section's value
    must be a table."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key in sections:
            if not isinstance(value, dict):
                raise ConfigError(f"[{key}] must be a table of settings, got {value!r}")
            for sub, v in value.items():
                flat[f"{key}.{sub}"] = v
        else:
            flat[key] = value
    return flat


def dotted_keys(fields: Mapping[str, Sequence[str]], top: Iterable[str]) -> list[str]:
    """Every ``section.field`` of ``fields`` (section → field names), then the top-level names sorted."""
    return [f"{sec}.{name}" for sec, names in fields.items() for name in names] + sorted(top)


def resolve_bare_key(
    key: str,
    fields: Mapping[str, Sequence[str]],
    top: Iterable[str],
    noun: str = "config key",
    known: str = "known keys",
) -> str:
    """``mu`` → ``data.mu`` when the bare name belongs to exactly one section; dotted and top-level
    keys are returned as given. Errors call the key a ``noun`` and list the ``known`` keys."""
    if "." in key or key in top:
        return key
    owners = [sec for sec, names in fields.items() if key in names]
    if len(owners) == 1:
        return f"{owners[0]}.{key}"
    if not owners:
        raise ConfigError(f"unknown {noun} {key!r}; {known}: {', '.join(dotted_keys(fields, top))}")
    raise ConfigError(f"{noun} {key!r} is ambiguous: say one of " + ", ".join(f"{o}.{key}" for o in owners))


def split_key(key: str, fields: Mapping[str, Sequence[str]], noun: str = "config key") -> tuple[str, str]:
    """``"data.mu"`` → ``("data", "mu")``, or raise naming the sections or the section's fields."""
    parts = key.split(".")
    if len(parts) != 2 or parts[0] not in fields:
        raise ConfigError(f"unknown {noun} {key!r}; sections are {', '.join(fields)}")
    section, name = parts
    if name not in fields[section]:
        raise ConfigError(f"unknown {noun} {key!r}; {section} has: {', '.join(fields[section])}")
    return section, name


def field_type(obj: Any, name: str) -> str:
    """The annotation of dataclass ``obj``'s field ``name``, as text (``"float | None"``)."""
    return str({f.name: f.type for f in dataclasses.fields(obj)}[name])
