"""Sweep specs: a TOML file → a validated :class:`SweepSpec` → the list of :class:`Unit` to run.

A spec has three tables (every key optional except at least one swept parameter or seed)::

    [sweep]
    name = "mu_rho"                 # default: the file's stem
    protocol = "synthetic"          # or "cifar": units are CIFAR runs (recipe = "fast" | "paper")
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
    units_per_task = 1              # short units packed several per array task
    max_requeues = 3                # a task that reaches its time limit is requeued this often
    signal_delay_s = 90             # ... warned this many seconds before the limit

Parameter keys are dotted config keys (``data.mu``), nested tables (``[sweep.parameters.data]``,
``mu = [...]``) or bare names that are unique across sections (``mu``). In ``mode = "random"``, a
list is sampled uniformly and a ``{start, stop}`` range continuously (log-uniformly with
``log = true``; from its grid when ``num`` or ``step`` is given). A unit is one resolved config
(the point, the master seed, the stages) with its S model seeds; its key is
``SimConfig.config_hash()``. With ``protocol = "cifar"`` a unit is one CIFAR run
(:func:`multiview.cifar.protocol.run_cifar`, its S models on one device) of a
:class:`~multiview.cifar.config.CifarConfig` built from ``recipe`` (default ``fast``), the config file
and ``[sweep.set]`` (``"data.path"``, relative to the spec, says where the data is); its keys
are CIFAR settings and its master seeds spread over GPUs and nodes like any units. The three tables
are settings sections (:mod:`multiview.settings`):
every value is converted and checked the way a config's is, and every error names the field and
what is allowed.
"""

from __future__ import annotations

import itertools
import math
import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from multiview import stages as registry
from multiview.config import get_preset
from multiview.device import check_device
from multiview.settings import (
    Boolean,
    ConfigError,
    Constraint,
    Integer,
    NonEmpty,
    Number,
    OneOf,
    Positive,
    Rule,
    Section,
    Settings,
)

RANGE_KEYS = ("start", "stop", "num", "step", "log")
MODES = ("grid", "random")


class SpecError(ConfigError):
    """A sweep spec is invalid; the message names the field (``sweep.parameters.data.mu``)."""


# --------------------------------------------------------------------------------------------
# The spec's tables
# --------------------------------------------------------------------------------------------


@dataclass
class SweepTable(Section):
    """``[sweep]``: the base config, what is swept (``parameters``, ``mode``, ``samples``), the
    master ``seeds`` (a list, or a count), the ``stages`` and where the results go."""

    name: str | None = None
    protocol: str = registry.SYNTHETIC
    preset: str | None = None
    recipe: str | None = None
    config: str | None = None
    out: str | None = None
    seeds: Any = None
    stages: tuple[str, ...] | None = None
    mode: str = "grid"
    samples: int | None = None
    sample_seed: int = 0
    parameters: dict[str, Any] = field(default_factory=dict)
    set: dict[str, Any] = field(default_factory=dict)
    keep_stages: bool = True

    section: ClassVar[str] = "sweep"
    constraints: ClassVar[dict[str, Constraint]] = {
        "name": NonEmpty(),
        "protocol": OneOf((registry.SYNTHETIC, registry.CIFAR)),
        "preset": NonEmpty(),
        "recipe": NonEmpty(),
        "config": NonEmpty(),
        "out": NonEmpty(),
        "mode": OneOf(MODES),
        "samples": Integer(1),
        "sample_seed": Integer(0),
        "keep_stages": Boolean(),
    }

    def check(self) -> None:
        if self.mode == "random" and self.samples is None:
            raise SpecError(
                "sweep.samples: mode = 'random' needs the number of points to draw (an integer ≥ 1)"
            )
        if self.mode == "grid" and self.samples is not None:
            raise SpecError("sweep.samples: only used with mode = 'random' (a grid runs every combination)")
        for name in self.stages or ():
            try:
                registry.get(self.protocol, name)
            except ValueError as exc:
                raise SpecError(f"sweep.stages: {exc}") from None
        if self.protocol == registry.CIFAR and self.preset is not None:
            raise SpecError(
                "sweep.preset: a CIFAR sweep starts from a recipe (sweep.recipe = 'fast' or 'paper')"
            )
        if self.protocol == registry.SYNTHETIC and self.recipe is not None:
            raise SpecError("sweep.recipe: only a CIFAR sweep (sweep.protocol = 'cifar') has a recipe")


@dataclass
class LocalOptions(Section):
    """Options of the local backend (``[local]``)."""

    workers: int = 0
    threads: int = 0
    device: str = "auto"

    section: ClassVar[str] = "local"
    constraints: ClassVar[dict[str, Constraint]] = {
        "workers": Integer(0, "0 = one per GPU, else one per CPU core"),
        "threads": Integer(0, "0 = cores / workers"),
        "device": Rule(check_device),
    }


@dataclass
class SlurmOptions(Section):
    """Options of the SLURM backend (``[slurm]``); passed to ``submitit``. ``units_per_task``
    units run one after another in one array task; a task that reaches its time limit is warned
    ``signal_delay_s`` seconds before it (SLURM's resolution is about a minute), requeued and
    resumes its units from their checkpoints, at most ``max_requeues`` times."""

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
    units_per_task: int = 1
    max_requeues: int = 3
    signal_delay_s: int = 90

    section: ClassVar[str] = "slurm"
    constraints: ClassVar[dict[str, Constraint]] = {
        "time_min": Integer(1),
        "gpus_per_node": Integer(0),
        "cpus_per_task": Integer(1),
        "mem_gb": Positive,
        "array_parallelism": Integer(1),
        "device": Rule(check_device),
        "threads": Integer(0),
        "poll_s": Positive,
        "units_per_task": Integer(1),
        "max_requeues": Integer(0),
        "signal_delay_s": Integer(1),
    }


@dataclass
class SpecTables(Settings):
    """A spec file's three tables."""

    sweep: SweepTable = field(default_factory=SweepTable)
    local: LocalOptions = field(default_factory=LocalOptions)
    slurm: SlurmOptions = field(default_factory=SlurmOptions)

    noun: ClassVar[str] = "spec key"


# --------------------------------------------------------------------------------------------
# Data types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """One unit of work: a resolved config (with its master seed); its S seeds run batched."""

    key: str
    seed: int
    params: dict[str, Any]
    config: Settings  # a SimConfig, or a CifarConfig in a CIFAR sweep

    def label(self) -> str:
        """``data.mu=0.1 data.rho=0.2 seed=0``."""
        parts = [f"{k}={_short(v)}" for k, v in self.params.items()]
        return " ".join([*parts, f"seed={self.seed}"])


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
    base: Settings  # a SimConfig, or a CifarConfig in a CIFAR sweep
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
    if not raw.get("sweep"):
        raise SpecError("sweep: the spec needs a [sweep] table (a base preset, [sweep.parameters], seeds)")
    try:
        return _spec(SpecTables.from_dict(raw), text, Path(base_dir), default_name)
    except SpecError:
        raise
    except ConfigError as exc:
        raise SpecError(str(exc)) from None


def _spec(tables: SpecTables, text: str, base_dir: Path, default_name: str) -> SweepSpec:
    """The spec of validated tables: the base config, the parameters, the seeds."""
    sweep = tables.sweep
    name = sweep.name or default_name
    base = _base_config(sweep, base_dir)
    parameters = _parameters(sweep.parameters, base, sweep.mode)
    if sweep.stages is not None:
        if "protocol.stages" in {p.key for p in parameters}:
            raise SpecError("sweep.stages: protocol.stages is also swept in sweep.parameters; keep one")
        base = _apply(base, {"protocol.stages": sweep.stages}, "sweep.stages")
    spec = SweepSpec(
        name=name,
        base=base,
        parameters=parameters,
        seeds=_seeds(sweep.seeds if sweep.seeds is not None else [base.seed]),
        mode=sweep.mode,
        samples=sweep.samples or 0,
        sample_seed=sweep.sample_seed,
        out=Path(sweep.out or f"runs/sweeps/{name}"),
        keep_stages=sweep.keep_stages,
        local=tables.local,
        slurm=tables.slurm,
        source=text,
        base_dir=base_dir,
    )
    spec.units()  # every point must be a valid config: fail now, not on the cluster
    return spec


# --------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------


def _base_config(sweep: SweepTable, base_dir: Path) -> Settings:
    """The preset (a CIFAR sweep: the recipe), then the config file, then ``[sweep.set]``; a
    relative ``data.path`` of a CIFAR sweep is relative to the spec."""
    if sweep.protocol == registry.CIFAR:
        from multiview.cifar.config import build

        try:
            cfg: Settings = build(sweep.recipe or "fast")
        except ConfigError as exc:
            raise SpecError(f"sweep.recipe: {exc}") from None
    else:
        try:
            cfg = get_preset(sweep.preset or "default")
        except ConfigError as exc:
            raise SpecError(f"sweep.preset: {exc}") from None
    if sweep.config is not None:
        path = Path(sweep.config)
        path = path if path.is_absolute() else base_dir / path
        try:
            cfg = type(cfg).load_toml(path, base=cfg)
        except ConfigError as exc:
            raise SpecError(f"sweep.config: {exc}") from None
    cfg = _apply(cfg, _flatten(sweep.set, "sweep.set", type(cfg)), "sweep.set")
    if sweep.protocol == registry.CIFAR and cfg.data.path and not Path(cfg.data.path).is_absolute():
        cfg.data.path = str((base_dir / cfg.data.path).resolve())
    return cfg


def _apply(cfg: Settings, overrides: dict[str, Any], where: str) -> Settings:
    try:
        return cfg.with_overrides(overrides)
    except ConfigError as exc:
        raise SpecError(f"{where}: {exc}") from None


def _flatten(table: dict[str, Any], where: str, cls: type[Settings], ranges: bool = False) -> dict[str, Any]:
    """``{data: {mu: x}}``, ``{"data.mu": x}`` and ``{mu: x}`` all become ``{"data.mu": x}`` (keys
    of the config class ``cls``)."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if key in cls.sections() and isinstance(value, dict) and not (ranges and _is_range(value)):
            items = [(f"{key}.{sub}", v) for sub, v in value.items()]
        else:
            items = [(key, value)]
        for name, v in items:
            try:
                full = cls.resolve_key(name)
            except ConfigError as exc:
                raise SpecError(f"{where}.{name}: {exc}") from None
            if full not in cls.all_keys():
                raise SpecError(
                    f"{where}.{name}: unknown config key; known keys: {', '.join(cls.all_keys())}"
                )
            if full in flat:
                raise SpecError(f"{where}.{name}: {full} is given twice")
            flat[full] = v
    return flat


def _is_range(value: Any) -> bool:
    return isinstance(value, dict) and ("start" in value or "stop" in value)


def _parameters(table: dict[str, Any], base: Settings, mode: str) -> list[Parameter]:
    out = []
    for key, raw in _flatten(table, "sweep.parameters", type(base), ranges=True).items():
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
        Number(-math.inf).check(f"{where}.{name}", raw[name], raw)
    start, stop = float(raw["start"]), float(raw["stop"])
    log = raw.get("log", False)
    Boolean().check(f"{where}.log", log, raw)
    if log and (start <= 0 or stop <= 0):
        raise SpecError(f"{where}: log = true needs start > 0 and stop > 0")
    if "num" in raw and "step" in raw:
        raise SpecError(f"{where}: give num or step, not both")
    if "num" in raw:
        Integer(1).check(f"{where}.num", raw["num"], raw)
        values = _spaced(start, stop, raw["num"], log)
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


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _get_path(cfg: Settings, key: str) -> Any:
    value = cfg.get(key)
    return list(value) if isinstance(value, tuple) else value


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
