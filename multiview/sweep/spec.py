"""Sweep specs: a TOML file → a validated :class:`SweepSpec` → the list of :class:`Unit` to run.

A spec has three tables (every key optional except at least one swept parameter or seed)::

    [sweep]
    name = "mu_rho"                 # default: the file's stem
    preset = "smoke"                # base preset (default: "default") ...
    config = "base.toml"            # ... and/or a config file on top of it (relative to the spec)
    stages = ["single", "ensemble", "kd"]   # protocol.stages of every unit
    seeds = [0, 1, 2]               # master seeds (or a count: seeds = 3 means 0, 1, 2)
    mode = "grid"                   # or "random": `samples` points drawn with `sample_seed`
    out = "runs/sweeps/mu_rho"      # the sweep folder (default: runs/sweeps/<name>)
    keep_stages = true              # keep each unit's per-stage checkpoints (stages/*.pt)

    [sweep.set]                     # fixed overrides applied to every unit
    "train.max_steps" = 500

    [sweep.parameters]              # swept config keys: a list, or a range
    "data.mu" = [0.05, 0.1, 0.2]
    "data.rho" = {start = 0.05, stop = 0.4, num = 4}            # linspace (log = true: logspace)
    "model.m" = {start = 2, stop = 8, step = 2}                 # 2, 4, 6, 8

    [local]                         # `--backend local`
    workers = 0                     # 0: one per GPU, else one per CPU core
    threads = 0                     # torch threads per worker (0: cores / workers)
    device = "auto"

    [slurm]                         # `--backend slurm` (submitit job array)
    partition = "gpu"
    time_min = 60
    gpus_per_node = 1
    cpus_per_task = 4
    mem_gb = 16
    array_parallelism = 64

Parameter keys are dotted config keys (``data.mu``), nested tables (``[sweep.parameters.data]``,
``mu = [...]``) or bare names that are unique across sections (``mu``). In ``mode = "random"``, a
list is sampled uniformly and a ``{start, stop}`` range continuously (log-uniformly with
``log = true``; from its grid when ``num`` or ``step`` is given). A unit is one resolved config
(the point, the master seed, the stages) with its S model seeds; its key is
``SimConfig.config_hash()``. Every error names the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multiview import config as config_mod
from multiview.config import ConfigError, SimConfig
from multiview.validation import boolean

RANGE_KEYS = ("start", "stop", "num", "step", "log")
MODES = ("grid", "random")
SECTIONS = ("data", "model", "train", "probes", "protocol")


class SpecError(ValueError):
    """A sweep spec is invalid; the message names the field (``sweep.parameters.data.mu``)."""


# --------------------------------------------------------------------------------------------
# Data types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """One unit of work: a resolved config (with its master seed); its S seeds run batched."""

    key: str
    seed: int
    params: dict[str, Any]
    config: SimConfig

    def label(self) -> str:
        """``data.mu=0.1 data.rho=0.2 seed=0``."""
        parts = [f"{k}={_short(v)}" for k, v in self.params.items()]
        return " ".join([*parts, f"seed={self.seed}"])


@dataclass
class LocalOptions:
    """Options of the local backend (``[local]``)."""

    workers: int = 0
    threads: int = 0
    device: str = "auto"


@dataclass
class SlurmOptions:
    """Options of the SLURM backend (``[slurm]``); passed to ``submitit``."""

    partition: str | None = None
    time_min: int = 60
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    mem_gb: float = 4.0
    array_parallelism: int = 64
    job_name: str = "multiview-sweep"
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    setup: list[str] = field(default_factory=list)
    additional: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    threads: int = 0
    poll_s: float = 5.0
    folder: str | None = None


@dataclass
class Parameter:
    """One swept key: discrete ``values``, or (random mode only) a continuous ``[low, high]``."""

    key: str
    values: list[Any] | None = None
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    integer: bool = False

    def sample(self, rng: random.Random) -> Any:
        """A random value: uniform over ``values``, else uniform (log-uniform) on ``[low, high]``."""
        if self.values is not None:
            return self.values[rng.randrange(len(self.values))]
        if self.log:
            x = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            x = rng.uniform(self.low, self.high)
        return int(round(x)) if self.integer else _tidy(x)


@dataclass
class SweepSpec:
    """A validated sweep: the base config, what is swept, the seeds, and execution options."""

    name: str
    base: SimConfig
    parameters: list[Parameter]
    seeds: list[int]
    mode: str = "grid"
    samples: int = 0
    sample_seed: int = 0
    out: Path = Path("runs/sweeps/sweep")
    keep_stages: bool = True
    local: LocalOptions = field(default_factory=LocalOptions)
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    source: str = ""
    base_dir: Path = Path(".")

    @property
    def swept_keys(self) -> list[str]:
        return [p.key for p in self.parameters]

    def points(self) -> list[dict[str, Any]]:
        """The swept points (without seeds): the grid's product, or ``samples`` random draws."""
        if self.mode == "random":
            rng = random.Random(self.sample_seed)
            return [{p.key: p.sample(rng) for p in self.parameters} for _ in range(self.samples)]
        grids = [p.values or [] for p in self.parameters]
        return [dict(zip(self.swept_keys, combo, strict=True)) for combo in itertools.product(*grids)]

    def units(self) -> list[Unit]:
        """Every (point, master seed) as a resolved, validated config; duplicates removed."""
        out: dict[str, Unit] = {}
        for point in self.points():
            for seed in self.seeds:
                try:
                    cfg = self.base.with_overrides({**point, "seed": seed})
                except ConfigError as exc:
                    where = ", ".join(f"{k}={_short(v)}" for k, v in point.items()) or "the base config"
                    raise SpecError(
                        f"sweep.parameters: the point {where} is not a valid config: {exc}"
                    ) from None
                params = {key: _get_path(cfg, key) for key in point}
                key = cfg.config_hash()
                out.setdefault(key, Unit(key=key, seed=seed, params=params, config=cfg))
        return list(out.values())


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_spec(path: str | Path, base_dir: str | Path | None = None) -> SweepSpec:
    """Read and validate a sweep spec file (relative paths inside it are relative to ``base_dir``,
    by default the file's folder)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError(f"sweep spec {path} does not exist") from None
    except IsADirectoryError:
        raise SpecError(f"sweep spec {path} is a folder; give a .toml file") from None
    return parse_spec(text, base_dir=Path(base_dir) if base_dir else path.parent, default_name=path.stem)


def parse_spec(text: str, base_dir: str | Path = ".", default_name: str = "sweep") -> SweepSpec:
    """Validate the text of a sweep spec; every error names its field."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"sweep spec is not valid TOML: {exc}") from None
    _only(raw, ("sweep", "local", "slurm"), "spec", "top-level tables")
    sweep = _table(raw, "sweep", "sweep")
    if not sweep:
        raise SpecError("sweep: the spec needs a [sweep] table (a base preset, [sweep.parameters], seeds)")
    _only(
        sweep,
        (
            "name",
            "preset",
            "config",
            "out",
            "seeds",
            "stages",
            "mode",
            "samples",
            "sample_seed",
            "parameters",
            "set",
            "keep_stages",
        ),
        "sweep",
        "keys",
    )
    base_dir = Path(base_dir)
    name = _string(sweep, "name", "sweep", default_name)
    base = _base_config(sweep, base_dir)
    mode = _string(sweep, "mode", "sweep", "grid")
    if mode not in MODES:
        raise SpecError(f"sweep.mode = {mode!r}: must be one of {', '.join(MODES)}")
    samples = _integer(sweep, "samples", "sweep", 0, low=1)
    if mode == "random" and "samples" not in sweep:
        raise SpecError("sweep.samples: mode = 'random' needs the number of points to draw (an integer ≥ 1)")
    if mode == "grid" and "samples" in sweep:
        raise SpecError("sweep.samples: only used with mode = 'random' (a grid runs every combination)")
    sample_seed = _integer(sweep, "sample_seed", "sweep", 0, low=0)

    parameters = _parameters(_table(sweep, "parameters", "sweep.parameters"), base, mode)
    if "stages" in sweep:
        if "protocol.stages" in {p.key for p in parameters}:
            raise SpecError("sweep.stages: protocol.stages is also swept in sweep.parameters; keep one")
        base = _apply(base, {"protocol.stages": _stages(sweep["stages"])}, "sweep.stages")
    seeds = _seeds(sweep.get("seeds", [base.seed]))

    spec = SweepSpec(
        name=name,
        base=base,
        parameters=parameters,
        seeds=seeds,
        mode=mode,
        samples=samples,
        sample_seed=sample_seed,
        out=Path(_string(sweep, "out", "sweep", f"runs/sweeps/{name}")),
        keep_stages=_boolean(sweep, "keep_stages", "sweep", True),
        local=_options(_table(raw, "local", "local"), LocalOptions, "local"),
        slurm=_options(_table(raw, "slurm", "slurm"), SlurmOptions, "slurm"),
        source=text,
        base_dir=base_dir,
    )
    _check_local(spec.local)
    _check_slurm(spec.slurm)
    spec.units()  # every point must be a valid config: fail now, not on the cluster
    return spec


# --------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------


def _base_config(sweep: dict[str, Any], base_dir: Path) -> SimConfig:
    """The preset, then the config file, then ``[sweep.set]``."""
    preset = _string(sweep, "preset", "sweep", "default")
    try:
        cfg = config_mod.get_preset(preset)
    except ConfigError as exc:
        raise SpecError(f"sweep.preset: {exc}") from None
    if "config" in sweep:
        path = Path(_string(sweep, "config", "sweep", ""))
        path = path if path.is_absolute() else base_dir / path
        try:
            cfg = config_mod.load_toml(path, base=cfg)
        except ConfigError as exc:
            raise SpecError(f"sweep.config: {exc}") from None
    fixed = _flatten(_table(sweep, "set", "sweep.set"), "sweep.set")
    return _apply(cfg, fixed, "sweep.set")


def _apply(cfg: SimConfig, overrides: dict[str, Any], where: str) -> SimConfig:
    try:
        return cfg.with_overrides(overrides)
    except ConfigError as exc:
        raise SpecError(f"{where}: {exc}") from None


def _flatten(table: dict[str, Any], where: str, ranges: bool = False) -> dict[str, Any]:
    """``{data: {mu: x}}``, ``{"data.mu": x}`` and ``{mu: x}`` all become ``{"data.mu": x}``."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if key in SECTIONS and isinstance(value, dict) and not (ranges and _is_range(value)):
            items = [(f"{key}.{sub}", v) for sub, v in value.items()]
        else:
            items = [(key, value)]
        for name, v in items:
            try:
                full = config_mod.resolve_key(name)
            except ConfigError as exc:
                raise SpecError(f"{where}.{name}: {exc}") from None
            if full not in config_mod.all_keys():
                raise SpecError(
                    f"{where}.{name}: unknown config key; known keys: {', '.join(config_mod.all_keys())}"
                )
            if full in flat:
                raise SpecError(f"{where}.{name}: {full} is given twice")
            flat[full] = v
    return flat


def _is_range(value: Any) -> bool:
    return isinstance(value, dict) and ("start" in value or "stop" in value)


def _parameters(table: dict[str, Any], base: SimConfig, mode: str) -> list[Parameter]:
    out = []
    for key, raw in _flatten(table, "sweep.parameters", ranges=True).items():
        where = f"sweep.parameters.{key}"
        if key == "seed":
            raise SpecError(f"{where}: the master seed is swept with sweep.seeds (a list of integers)")
        current = _get_path(base, key)
        integer = isinstance(current, int) and not isinstance(current, bool)
        param = _parameter(where, key, raw, integer, mode)
        for value in param.values if param.values is not None else [param.low, param.high]:
            try:
                base.with_overrides({key: value})
            except ConfigError as exc:
                raise SpecError(f"{where}: value {_short(value)} is not allowed: {exc}") from None
        out.append(param)
    return out


def _parameter(where: str, key: str, raw: Any, integer: bool, mode: str) -> Parameter:
    what = "values must be a non-empty list or {start, stop, num} (or {start, stop, step})"
    if isinstance(raw, list):
        if not raw:
            raise SpecError(f"{where}: {what}; got an empty list")
        if any(isinstance(v, dict) for v in raw):
            raise SpecError(f"{where}: {what}; a list holds values, not tables")
        return Parameter(key, values=_dedupe(raw), integer=integer)
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: {what}; got {raw!r}")
    for name in raw:
        if name not in RANGE_KEYS:
            raise SpecError(f"{where}.{name}: unknown range key; a range has {', '.join(RANGE_KEYS)}")
    for name in ("start", "stop"):
        if name not in raw:
            raise SpecError(f"{where}: {what}; the range has no {name}")
        if isinstance(raw[name], bool) or not isinstance(raw[name], (int, float)):
            raise SpecError(f"{where}.{name} = {raw[name]!r}: must be a number")
    start, stop = float(raw["start"]), float(raw["stop"])
    log = raw.get("log", False)
    boolean(f"{where}.log", log, SpecError)
    if log and (start <= 0 or stop <= 0):
        raise SpecError(f"{where}: log = true needs start > 0 and stop > 0")
    if "num" in raw and "step" in raw:
        raise SpecError(f"{where}: give num or step, not both")
    if "num" in raw:
        num = raw["num"]
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise SpecError(f"{where}.num = {num!r}: must be an integer ≥ 1")
        values = _spaced(start, stop, num, log)
    elif "step" in raw:
        step = raw["step"]
        if isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0 or log:
            raise SpecError(f"{where}.step = {step!r}: must be a number > 0 (and log = false)")
        if stop < start:
            raise SpecError(f"{where}: with step, stop ({stop:g}) must be ≥ start ({start:g})")
        count = int(math.floor((stop - start) / step + 1e-9)) + 1
        values = [start + i * step for i in range(count)]
    elif mode == "random":
        low, high = min(start, stop), max(start, stop)
        return Parameter(key, low=low, high=high, log=log, integer=integer)
    else:
        raise SpecError(f"{where}: {what}; a grid range needs num or step")
    values = [int(round(v)) for v in values] if integer else [_tidy(v) for v in values]
    return Parameter(key, values=_dedupe(values), integer=integer)


def _spaced(start: float, stop: float, num: int, log: bool) -> list[float]:
    if num == 1:
        return [start]
    if log:
        a, b = math.log(start), math.log(stop)
        return [math.exp(a + (b - a) * i / (num - 1)) for i in range(num)]
    return [start + (stop - start) * i / (num - 1) for i in range(num)]


def _stages(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [s.strip() for s in raw.split(",") if s.strip()]
    if not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
        raise SpecError(
            f"sweep.stages = {raw!r}: must be a non-empty list of stage names "
            f"({', '.join(config_mod.STAGES)})"
        )
    for s in raw:
        if s not in config_mod.STAGES:
            raise SpecError(f"sweep.stages: unknown stage {s!r}; choose from {', '.join(config_mod.STAGES)}")
    return tuple(raw)


def _seeds(raw: Any) -> list[int]:
    what = "must be a non-empty list of distinct integers ≥ 0, or a count ≥ 1"
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw < 1:
            raise SpecError(f"sweep.seeds = {raw}: {what}")
        return list(range(raw))
    if not isinstance(raw, list) or not raw:
        raise SpecError(f"sweep.seeds = {raw!r}: {what}")
    for s in raw:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise SpecError(f"sweep.seeds: {s!r} {what}")
    if len(set(raw)) != len(raw):
        raise SpecError(f"sweep.seeds = {raw}: {what} (a seed is repeated)")
    return list(raw)


def _options(table: dict[str, Any], kind: type, where: str) -> Any:
    """Build an options dataclass; each value is checked against the field's default type."""
    fields = {f.name: f for f in dataclasses.fields(kind)}
    out = kind()
    for key, value in table.items():
        if key not in fields:
            raise SpecError(f"{where}.{key}: unknown option; {where} has {', '.join(fields)}")
        default = getattr(out, key)
        ftype = str(fields[key].type)
        ok = True
        if ftype.startswith("int"):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif ftype.startswith("float"):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        elif ftype.startswith("str"):
            ok = isinstance(value, str)
        elif ftype.startswith("list"):
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        elif ftype.startswith("dict"):
            ok = isinstance(value, dict)
        if not ok:
            expected = {
                "int": "an integer",
                "flo": "a number",
                "str": "a string",
                "lis": "a list of strings",
                "dic": "a table",
            }[ftype[:3]]
            raise SpecError(f"{where}.{key} = {value!r}: must be {expected} (default {default!r})")
        setattr(out, key, value)
    return out


def _check_local(o: LocalOptions) -> None:
    if o.workers < 0:
        raise SpecError(f"local.workers = {o.workers}: must be ≥ 0 (0 = one per GPU, else one per CPU core)")
    if o.threads < 0:
        raise SpecError(f"local.threads = {o.threads}: must be ≥ 0 (0 = cores / workers)")
    check_device("local.device", o.device)


def _check_slurm(o: SlurmOptions) -> None:
    for name, low in (
        ("time_min", 1),
        ("gpus_per_node", 0),
        ("cpus_per_task", 1),
        ("array_parallelism", 1),
        ("threads", 0),
    ):
        if getattr(o, name) < low:
            raise SpecError(f"slurm.{name} = {getattr(o, name)}: must be an integer ≥ {low}")
    if o.mem_gb <= 0:
        raise SpecError(f"slurm.mem_gb = {o.mem_gb}: must be > 0")
    if o.poll_s <= 0:
        raise SpecError(f"slurm.poll_s = {o.poll_s}: must be > 0")
    check_device("slurm.device", o.device)


def check_device(where: str, device: str) -> None:
    """Raise :class:`SpecError` unless ``device`` is auto, cpu, cuda or cuda:N."""
    kind = device.split(":")[0]
    if kind not in ("auto", "cpu", "cuda") or (
        ":" in device and (kind != "cuda" or not device[5:].isdigit())
    ):
        raise SpecError(f"{where} = {device!r}: must be auto, cpu, cuda or cuda:N")


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _only(table: dict[str, Any], allowed: tuple[str, ...], where: str, what: str) -> None:
    for key in table:
        if key not in allowed:
            raise SpecError(f"{where}.{key}: unknown; allowed {what}: {', '.join(allowed)}")


def _table(raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise SpecError(f"{where} = {value!r}: must be a table ([{where}])")
    return value


def _string(table: dict[str, Any], key: str, where: str, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or (key in table and not value):
        raise SpecError(f"{where}.{key} = {value!r}: must be a non-empty string")
    return value


def _integer(table: dict[str, Any], key: str, where: str, default: int, low: int) -> int:
    value = table.get(key, default)
    if key in table and (isinstance(value, bool) or not isinstance(value, int) or value < low):
        raise SpecError(f"{where}.{key} = {value!r}: must be an integer ≥ {low}")
    return value


def _boolean(table: dict[str, Any], key: str, where: str, default: bool) -> bool:
    value = table.get(key, default)
    boolean(f"{where}.{key}", value, SpecError)
    return value


def _get_path(cfg: SimConfig, key: str) -> Any:
    obj: Any = cfg
    for part in key.split("."):
        obj = getattr(obj, part)
    return list(obj) if isinstance(obj, tuple) else obj


def _dedupe(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def _tidy(x: float) -> float:
    """Round away float noise from ranges (0.30000000000000004 → 0.3) so keys and labels are clean."""
    return float(f"{x:.12g}")


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ",".join(_short(x) for x in v)
    return str(v)
