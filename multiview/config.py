"""Configuration: plain dataclasses, presets, TOML load/save, ``--set`` overrides, validation.

A :class:`SimConfig` fully determines a run (together with its master ``seed``). Every symbol of
the paper has one field; the docstring of each section names the paper's symbols. Validation
happens up front and every error names the field (``data.mu``) and the allowed range.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from multiview.validation import (
    ConfigError,
    choice,
    choices,
    coerce,
    dotted_keys,
    drop_none,
    field_type,
    flatten_sections,
    in_range,
    int_at_least,
    interval,
    plain,
    read_toml,
    resolve_bare_key,
    split_key,
)

# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


@dataclass
class DataConfig:
    """The multi-view distribution D = (1 − μ)·D_m + μ·D_s (paper §3, spec §1).

    Symbols: ``k`` classes, patch dimension ``d``, ``P`` patches, ``C_p`` patches per feature,
    ``s`` cross-class sparsity (each other-class feature enters V′ with probability s/k), ``mu``
    = μ single-view fraction, ``rho`` = ρ weak-view strength, ``Gamma`` = Γ cross-class strength
    in single-view data, ``gamma`` = γ feature-noise bound (α ~ U[0, γ]), ``sigma_p`` = σ_p
    per-coordinate std of the Gaussian noise ξ_p on feature patches, ``sigma_nonfeature`` the
    per-coordinate std on non-feature patches (``None`` means the paper's γ·k/√d).

    Per-feature totals S_v = Σ_{p∈P_v(X)} z_p are drawn uniformly in these intervals:
    ``label_view_total`` (both label views, multi-view data), ``cross_total_multi`` (V′ in
    multi-view data), ``dominant_view_total`` (v_{y,ℓ̂}, single-view), ``weak_view_total``
    (v_{y,3−ℓ̂}, single-view, **in units of ρ**), ``cross_total_single`` (V′, single-view,
    **in units of Γ**). ``split`` spreads a total over its C_p patches (``dirichlet`` = a
    Dirichlet(1, …, 1) split, ``even``). ``feature_noise`` = ``all`` puts α on every one of the 2k
    features on every patch (the paper's Σ_{v′∈V}); ``sparse`` on ``feature_noise_count`` random
    features per patch. ``noise_model`` = ``gaussian`` materializes X ∈ R^{n×P×d} with
    ξ_p ~ N(0, σ²I_d); ``orthogonal`` is the d → ∞ limit at the same norm ‖ξ_p‖ = σ·√d, in which
    every ξ_p is orthogonal to the features and to every other ξ_p (the regime the paper's
    d ≥ poly(k) describes; see :mod:`multiview.inputs`). Under ``gaussian``,
    ``noise_in_feature_span`` = ``True`` draws ξ_p ~ N(0, σ²I_d) as the paper does; ``False``
    removes its component along the 2k features. At the paper's d ≥ poly(k) that component
    (≈ σ per feature) is negligible; at simulable d it is not: a neuron that learned v_{i,1} to
    Λ ≈ 2 sees ±2σ from ξ on every patch, which leaks into v_{i,2}'s patches and teaches the
    second view (docs/regime.md). When V(X) needs more than P patches, ``on_cap`` = ``drop``
    keeps a random subset of the cross-class features (the batch reports how often) and
    ``error`` refuses.
    """

    k: int = 6
    d: int = 200
    P: int = 12
    C_p: int = 1
    s: float = 4.6
    mu: float = 0.1
    rho: float = 0.1
    Gamma: float = 0.3
    gamma: float = 0.0
    sigma_p: float = 0.07
    sigma_nonfeature: float | None = None
    noise_model: str = "orthogonal"
    noise_in_feature_span: bool = True
    label_view_total: tuple[float, float] = (1.0, 2.0)
    cross_total_multi: tuple[float, float] = (0.2, 0.4)
    dominant_view_total: tuple[float, float] = (1.0, 2.0)
    weak_view_total: tuple[float, float] = (1.0, 2.0)
    cross_total_single: tuple[float, float] = (0.5, 1.0)
    split: str = "dirichlet"
    feature_noise: str = "all"
    feature_noise_count: int = 2
    on_cap: str = "drop"
    n_train: int = 180
    n_test: int = 20000

    @property
    def sigma_nonfeature_resolved(self) -> float:
        """σ of non-feature patches: the configured value, or γ·k/√d."""
        if self.sigma_nonfeature is not None:
            return float(self.sigma_nonfeature)
        return self.gamma * self.k / math.sqrt(self.d)

    def validate(self) -> None:
        int_at_least("data.k", self.k, 2)
        int_at_least("data.C_p", self.C_p, 1)
        int_at_least("data.P", self.P, 2 * self.C_p, "2·C_p (the two label views need C_p patches each)")
        int_at_least("data.d", self.d, 2 * self.k, "2·k (the 2k features must be orthonormal)")
        in_range("data.s", self.s, 0.0, float(self.k))
        in_range("data.mu", self.mu, 0.0, 1.0)
        in_range("data.rho", self.rho, 0.0, math.inf)
        in_range("data.Gamma", self.Gamma, 0.0, math.inf)
        in_range("data.gamma", self.gamma, 0.0, math.inf)
        in_range("data.sigma_p", self.sigma_p, 0.0, math.inf)
        if self.sigma_nonfeature is not None:
            in_range("data.sigma_nonfeature", self.sigma_nonfeature, 0.0, math.inf)
        for name in (
            "label_view_total",
            "cross_total_multi",
            "dominant_view_total",
            "weak_view_total",
            "cross_total_single",
        ):
            interval(f"data.{name}", getattr(self, name))
        choice("data.noise_model", self.noise_model, ("gaussian", "orthogonal"))
        choice("data.split", self.split, ("dirichlet", "even"))
        choice("data.feature_noise", self.feature_noise, ("all", "sparse"))
        int_at_least("data.feature_noise_count", self.feature_noise_count, 1)
        if self.feature_noise_count > 2 * self.k:
            raise ConfigError(
                f"data.feature_noise_count = {self.feature_noise_count}: must be at most 2·k = {2 * self.k}"
            )
        choice("data.on_cap", self.on_cap, ("drop", "error"))
        int_at_least("data.n_train", self.n_train, 1)
        int_at_least("data.n_test", self.n_test, 1)


@dataclass
class ModelConfig:
    """The two-layer CNN F_i(X) = Σ_r Σ_p ReLU~(⟨w_{i,r}, x_p⟩) (paper §3, spec §2).

    ``m`` neurons per class, smoothed-ReLU power ``q`` and threshold ``varrho`` = ϱ, Gaussian
    init std ``sigma_0`` = σ_0.
    """

    m: int = 4
    q: int = 6
    varrho: float = 0.1
    sigma_0: float = 0.001

    def validate(self) -> None:
        int_at_least("model.m", self.m, 1)
        int_at_least("model.q", self.q, 1)
        in_range("model.varrho", self.varrho, 0.0, math.inf, open_low=True)
        in_range("model.sigma_0", self.sigma_0, 0.0, math.inf, open_low=True)


@dataclass
class TrainConfig:
    """Gradient descent on cross-entropy (paper §3).

    ``optimizer``: ``gd`` (full batch, the paper) or ``sgd`` (mini-batches of ``batch_size``,
    reshuffled each epoch by ``shuffle_seed``; the same order for every seed). ``step``:
    ``constant`` uses η = ``lr``; ``normalized`` uses, per seed s, η_s = min(``lr``, ``delta``/‖g_s‖),
    a reparametrization of time along the same gradient-flow path (see ``docs/training.md``).
    Training stops, per seed, when its training loss falls below ``loss_threshold``, or after
    ``max_steps``. Probes are logged every ``log_every`` steps. ``chunk_size`` bounds the number
    of examples in one matrix product (0 = automatic, from ``memory_budget_mb``).
    ``dtype`` is ``float32`` or ``float64``. ``matmul`` (``exact``, ``tf32``, ``bf16``) and
    ``compile`` trade rounding for speed (:mod:`multiview.precision`).
    """

    optimizer: str = "gd"
    step: str = "relative"
    lr: float = 1e9
    delta: float = 0.05
    max_steps: int = 4000
    loss_threshold: float = 1e-3
    batch_size: int = 0
    shuffle_seed: int = 0
    log_every: int = 50
    chunk_size: int = 0
    memory_budget_mb: int = 1024
    dtype: str = "float32"
    matmul: str = "exact"
    compile: bool = False

    def validate(self) -> None:
        choice("train.optimizer", self.optimizer, ("gd", "sgd"))
        choice("train.step", self.step, ("constant", "normalized", "relative"))
        in_range("train.lr", self.lr, 0.0, math.inf, open_low=True)
        in_range("train.delta", self.delta, 0.0, math.inf, open_low=True)
        int_at_least("train.max_steps", self.max_steps, 1)
        in_range("train.loss_threshold", self.loss_threshold, 0.0, math.inf)
        int_at_least("train.batch_size", self.batch_size, 0)
        if self.optimizer == "sgd" and self.batch_size < 1:
            raise ConfigError("train.batch_size = 0: optimizer 'sgd' needs a batch size of at least 1")
        int_at_least("train.log_every", self.log_every, 1)
        int_at_least("train.chunk_size", self.chunk_size, 0)
        int_at_least("train.memory_budget_mb", self.memory_budget_mb, 1)
        choice("train.dtype", self.dtype, ("float32", "float64"))
        choice("train.matmul", self.matmul, ("exact", "tf32", "bf16"))


@dataclass
class ProbeConfig:
    """Which view a seed learned (spec §4).

    View (i, ℓ) counts as learned when Λ_{i,ℓ} = max_r ⟨w_{i,r}, v_{i,ℓ}⟩ at the end of training
    is at least ``learned_threshold``·ϱ, i.e. some neuron of class i is that far into the
    smoothed ReLU's linear regime on the view. The lottery set M keeps (i, ℓ) when
    Λ_{i,ℓ}(0) ≥ (1 + ``lottery_margin``)·Λ_{i,3−ℓ}(0); ``lottery_margin`` < 0 means the paper's
    1/log²(m) (natural log; 0 when m = 1). ``memorization_examples`` caps how many training
    examples the memorization probe scores (0 = all).
    """

    learned_threshold: float = 1.0
    lottery_margin: float = -1.0
    memorization_examples: int = 0

    def validate(self) -> None:
        in_range("probes.learned_threshold", self.learned_threshold, 0.0, math.inf, open_low=True)
        int_at_least("probes.memorization_examples", self.memorization_examples, 0)

    def margin(self, m: int) -> float:
        if self.lottery_margin >= 0:
            return self.lottery_margin
        return 0.0 if m < 3 else 1.0 / math.log(m) ** 2


STAGES = (
    "single",
    "ensemble",
    "training_average",
    "kd",
    "self_kd",
    "ensemble_of_kd",
    "random_features",
    "ntk",
)


@dataclass
class ProtocolConfig:
    """The paper's protocol (spec §5, §7): which stages run and how.

    ``stages``: any of ``single, ensemble, training_average, kd, self_kd, ensemble_of_kd,
    random_features, ntk`` (``single`` is always run first; the others need it).
    ``ensemble_combine``: ``logits`` (average of F, the paper) or ``probs``.
    ``training_average_K``: sub-networks in one trained-as-average model (0 = S).
    KD (Theorem 3): ``kd_objective`` = ``theory`` (truncated tempered logits with τ = ``kd_tau``,
    0 meaning 1/ln²k; the one-sided term with rate η′ = ``kd_eta_ratio``·η; plus the label loss)
    or ``practical`` (t·CE(S, y) + (1 − t)·T²·H(S/T, T/T) with t = ``kd_t``, temperature
    ``kd_temperature``). ``kd_teacher_scale`` multiplies the ensemble's averaged logits (the
    paper's Θ̃(1) rescaling of G). Students train for ``kd_steps`` (0 = ``train.max_steps``).
    Baselines: ``rf_sigma_0`` is the init std of the random-feature / NTK networks (0 = the
    model's σ_0); ``rf_width`` the number of random features of one random-feature model;
    ``baseline_steps`` their step budget (0 = ``train.max_steps``); ``baseline_delta`` the δ of
    their normalized steps (0 = ``train.delta``; unused with ``train.step = "constant"``).
    """

    stages: tuple[str, ...] = STAGES
    ensemble_combine: str = "logits"
    training_average_K: int = 0
    kd_objective: str = "theory"
    kd_tau: float = 0.0
    kd_eta_ratio: float = 0.1
    kd_t: float = 0.1
    kd_temperature: float = 4.0
    kd_teacher_scale: float = 1.0
    kd_steps: int = 3000
    rf_sigma_0: float = 0.0
    rf_width: int = 128
    baseline_steps: int = 1000
    baseline_delta: float = 0.5

    def validate(self) -> None:
        choices("protocol.stages", self.stages, STAGES)
        choice("protocol.ensemble_combine", self.ensemble_combine, ("logits", "probs"))
        int_at_least("protocol.training_average_K", self.training_average_K, 0)
        choice("protocol.kd_objective", self.kd_objective, ("theory", "practical"))
        in_range("protocol.kd_tau", self.kd_tau, 0.0, math.inf)
        in_range("protocol.kd_eta_ratio", self.kd_eta_ratio, 0.0, math.inf)
        in_range("protocol.kd_t", self.kd_t, 0.0, 1.0)
        in_range("protocol.kd_temperature", self.kd_temperature, 0.0, math.inf, open_low=True)
        in_range("protocol.kd_teacher_scale", self.kd_teacher_scale, 0.0, math.inf, open_low=True)
        int_at_least("protocol.kd_steps", self.kd_steps, 0)
        in_range("protocol.rf_sigma_0", self.rf_sigma_0, 0.0, math.inf)
        int_at_least("protocol.rf_width", self.rf_width, 1)
        int_at_least("protocol.baseline_steps", self.baseline_steps, 0)
        in_range("protocol.baseline_delta", self.baseline_delta, 0.0, math.inf)

    def tau(self, k: int) -> float:
        """τ of Theorem 3: the configured value or 1/ln²(k)."""
        return self.kd_tau if self.kd_tau > 0 else 1.0 / math.log(k) ** 2


@dataclass
class SimConfig:
    """One simulation: the distribution, the learner, training, probes, protocol, seeds.

    ``seed`` is the master seed: the data, each model seed's initialization and each student's
    initialization are derived from it (:mod:`multiview.seeding`). ``n_seeds`` = S models are
    trained in one batched tensor.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    probes: ProbeConfig = field(default_factory=ProbeConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    seed: int = 0
    n_seeds: int = 8

    def validate(self) -> SimConfig:
        self.data.validate()
        self.model.validate()
        self.train.validate()
        self.probes.validate()
        self.protocol.validate()
        int_at_least("seed", self.seed, 0)
        int_at_least("n_seeds", self.n_seeds, 1)
        return self

    # --- serialization -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return plain(dataclasses.asdict(self))

    def to_toml(self) -> str:
        return tomli_w.dumps(drop_none(self.to_dict()))

    def config_hash(self, exclude: tuple[str, ...] = ()) -> str:
        """A stable 16-hex-digit hash of the resolved config (key order and float repr fixed),
        optionally leaving out whole sections."""
        kept = {k: v for k, v in self.to_dict().items() if k not in exclude}
        text = json.dumps(kept, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def with_overrides(self, overrides: dict[str, Any]) -> SimConfig:
        """A validated copy with dotted-key overrides applied (``{"data.mu": 0.2}``)."""
        cfg = copy.deepcopy(self)
        for key, value in overrides.items():
            _set_path(cfg, key, value)
        return cfg.validate()


# --------------------------------------------------------------------------------------------
# Building configs: presets, TOML, --set
# --------------------------------------------------------------------------------------------


def from_dict(raw: dict[str, Any], base: SimConfig | None = None) -> SimConfig:
    """Build a validated config from nested plain data; unknown keys are errors."""
    cfg = copy.deepcopy(base) if base is not None else SimConfig()
    for key, value in flatten_sections(raw, _SECTION_TYPES).items():
        _set_path(cfg, key, value)
    return cfg.validate()


def load_toml(path: str | Path, base: SimConfig | None = None) -> SimConfig:
    """Load a TOML config file. A key ``preset = "name"`` at the top starts from that preset."""
    raw = read_toml(path)
    preset = raw.pop("preset", None)
    if preset is not None:
        base = get_preset(preset)
    return from_dict(raw, base)


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` from ``--set``; the value is read as a TOML value, else a string."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. data.mu=0.2")
    key, _, value = text.partition("=")
    key = key.strip()
    value = value.strip()
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key, parsed


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """``["data.mu=0.2", "n_seeds=3"]`` → {key: value}; values are read as TOML, else strings."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, value = parse_assignment(item)
        out[key] = value
    return out


def resolve_key(key: str) -> str:
    """Turn ``mu`` into ``data.mu`` when the bare name is unique across sections."""
    return resolve_bare_key(key, _SECTION_FIELDS, _TOP_FIELDS)


def all_keys() -> list[str]:
    return dotted_keys(_SECTION_FIELDS, _TOP_FIELDS)


# --------------------------------------------------------------------------------------------
# Presets (defined in multiview.presets)
# --------------------------------------------------------------------------------------------


def preset_names() -> list[str]:
    from multiview.presets import PRESETS

    return list(PRESETS)


def preset_help() -> dict[str, str]:
    from multiview.presets import PRESETS

    return {name: p.help for name, p in PRESETS.items()}


def get_preset(name: str) -> SimConfig:
    """A validated config: the defaults with the preset's overrides applied."""
    from multiview.presets import PRESETS

    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return from_dict(PRESETS[name].overrides)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

_SECTION_TYPES = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "probes": ProbeConfig,
    "protocol": ProtocolConfig,
}
_SECTION_FIELDS = {sec: [f.name for f in dataclasses.fields(t)] for sec, t in _SECTION_TYPES.items()}
_TOP_FIELDS = {"seed", "n_seeds"}


def _set_path(cfg: SimConfig, key: str, value: Any) -> None:
    key = resolve_key(key)
    if key in _TOP_FIELDS:
        setattr(cfg, key, coerce(key, value, "int"))
        return
    section, name = split_key(key, _SECTION_FIELDS)
    obj = getattr(cfg, section)
    setattr(obj, name, coerce(key, value, field_type(obj, name)))
