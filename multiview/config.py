"""The simulator's configuration: one dataclass per section, every symbol of the paper a field.

A :class:`SimConfig` fully determines a run (together with its master ``seed``); the docstring of
each section names the paper's symbols, and its ``constraints`` say what each value may be.
Conversion, checks, TOML and ``--set`` come from :mod:`multiview.settings`; named starting points
from :mod:`multiview.presets`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from multiview import stages as registry
from multiview.presets import PRESETS
from multiview.settings import (
    Boolean,
    ConfigError,
    Constraint,
    Integer,
    Interval,
    Number,
    OneOf,
    Positive,
    Section,
    Settings,
    SomeOf,
)

# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


@dataclass
class DataConfig(Section):
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

    section: ClassVar[str] = "data"
    constraints: ClassVar[dict[str, Constraint]] = {
        "k": Integer(2),
        "C_p": Integer(1),
        "P": Integer(lambda c: 2 * c.C_p, "2·C_p (the two label views need C_p patches each)"),
        "d": Integer(lambda c: 2 * c.k, "2·k (the 2k features must be orthonormal)"),
        "s": Number(0.0, lambda c: float(c.k)),
        "mu": Number(0.0, 1.0),
        "rho": Number(),
        "Gamma": Number(),
        "gamma": Number(),
        "sigma_p": Number(),
        "sigma_nonfeature": Number(),
        "label_view_total": Interval(),
        "cross_total_multi": Interval(),
        "dominant_view_total": Interval(),
        "weak_view_total": Interval(),
        "cross_total_single": Interval(),
        "noise_model": OneOf(("gaussian", "orthogonal")),
        "noise_in_feature_span": Boolean(),
        "split": OneOf(("dirichlet", "even")),
        "feature_noise": OneOf(("all", "sparse")),
        "feature_noise_count": Integer(1),
        "on_cap": OneOf(("drop", "error")),
        "n_train": Integer(1),
        "n_test": Integer(1),
    }

    def check(self) -> None:
        if self.feature_noise_count > 2 * self.k:
            raise ConfigError(
                f"data.feature_noise_count = {self.feature_noise_count}: must be at most 2·k = {2 * self.k}"
            )


@dataclass
class ModelConfig(Section):
    """The two-layer CNN F_i(X) = Σ_r Σ_p ReLU~(⟨w_{i,r}, x_p⟩) (paper §3, spec §2).

    ``m`` neurons per class, smoothed-ReLU power ``q`` and threshold ``varrho`` = ϱ, Gaussian
    init std ``sigma_0`` = σ_0.
    """

    m: int = 4
    q: int = 6
    varrho: float = 0.1
    sigma_0: float = 0.001

    section: ClassVar[str] = "model"
    constraints: ClassVar[dict[str, Constraint]] = {
        "m": Integer(1),
        "q": Integer(1),
        "varrho": Positive,
        "sigma_0": Positive,
    }


@dataclass
class TrainConfig(Section):
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

    section: ClassVar[str] = "train"
    constraints: ClassVar[dict[str, Constraint]] = {
        "optimizer": OneOf(("gd", "sgd")),
        "step": OneOf(("constant", "normalized", "relative")),
        "lr": Positive,
        "delta": Positive,
        "max_steps": Integer(1),
        "loss_threshold": Number(),
        "batch_size": Integer(0),
        "log_every": Integer(1),
        "chunk_size": Integer(0),
        "memory_budget_mb": Integer(1),
        "dtype": OneOf(("float32", "float64")),
        "matmul": OneOf(("exact", "tf32", "bf16")),
        "compile": Boolean(),
    }

    def check(self) -> None:
        if self.optimizer == "sgd" and self.batch_size < 1:
            raise ConfigError("train.batch_size = 0: optimizer 'sgd' needs a batch size of at least 1")


@dataclass
class ProbeConfig(Section):
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

    section: ClassVar[str] = "probes"
    constraints: ClassVar[dict[str, Constraint]] = {
        "learned_threshold": Positive,
        "lottery_margin": Number(-math.inf),
        "memorization_examples": Integer(0),
    }

    def margin(self, m: int) -> float:
        if self.lottery_margin >= 0:
            return self.lottery_margin
        return 0.0 if m < 3 else 1.0 / math.log(m) ** 2


@dataclass
class ProtocolConfig(Section):
    """The paper's protocol (spec §5, §7): which stages run and how.

    ``stages``: any of ``single, ensemble, training_average, kd, self_kd, ensemble_of_kd,
    random_features, ntk`` (``single`` is always run first; the others need it).
    ``ensemble_combine``: ``logits`` (average of F, the paper) or ``probs``.
    ``training_average_K``: sub-networks in one trained-as-average model (0 = S).
    KD (Theorem 3): ``kd_objective`` = ``theory`` (truncated tempered logits with τ = ``kd_tau``,
    0 meaning 1/ln²k; the one-sided term with rate η′ = ``kd_eta_ratio``·η; plus the label loss)
    or ``practical`` (t·CE(S, y) + (1 − t)·T²·H(S/T, T/T) with t = ``kd_t``, temperature
    ``kd_temperature``). ``kd_teacher_scale`` multiplies the teacher's logits (the
    paper's Θ̃(1) rescaling of G) for KD and self-KD alike. A student stops at ``kd_steps`` steps
    (0 = ``train.max_steps``) or when its gradient-flow time t = Σ η reaches ``kd_flow_time``
    (0 = no limit), whichever comes first, and (theory objective) when its loss falls below
    ``train.loss_threshold``; it takes its own steps: rule ``kd_step`` (``train`` = the models'
    ``train.step``) with δ = ``kd_delta`` (0 = ``train.delta``). Every ``kd_log_every`` steps the
    students' Λ and their test error on the first ``kd_eval_examples`` test examples are recorded
    (0 = no test error).
    Baselines: ``rf_sigma_0`` is the init std of the random-feature / NTK networks (0 = the
    model's σ_0); ``rf_width`` the number of random features of one random-feature model;
    ``baseline_steps`` their step budget (0 = ``train.max_steps``); ``baseline_delta`` the δ of
    their normalized steps (0 = ``train.delta``; unused with ``train.step = "constant"``).
    """

    stages: tuple[str, ...] = registry.names(registry.SYNTHETIC)
    ensemble_combine: str = "logits"
    training_average_K: int = 0
    kd_objective: str = "theory"
    kd_tau: float = 0.0
    kd_eta_ratio: float = 0.1
    kd_t: float = 0.1
    kd_temperature: float = 4.0
    kd_teacher_scale: float = 1.0
    kd_steps: int = 3000
    kd_flow_time: float = 0.0
    kd_step: str = "train"
    kd_delta: float = 0.0
    kd_log_every: int = 250
    kd_eval_examples: int = 5000
    rf_sigma_0: float = 0.0
    rf_width: int = 128
    baseline_steps: int = 1000
    baseline_delta: float = 0.5

    section: ClassVar[str] = "protocol"
    constraints: ClassVar[dict[str, Constraint]] = {
        "stages": SomeOf(registry.names(registry.SYNTHETIC)),
        "ensemble_combine": OneOf(("logits", "probs")),
        "training_average_K": Integer(0),
        "kd_objective": OneOf(("theory", "practical")),
        "kd_tau": Number(),
        "kd_eta_ratio": Number(),
        "kd_t": Number(0.0, 1.0),
        "kd_temperature": Positive,
        "kd_teacher_scale": Positive,
        "kd_steps": Integer(0),
        "kd_flow_time": Number(),
        "kd_step": OneOf(("train", "constant", "normalized", "relative")),
        "kd_delta": Number(),
        "kd_log_every": Integer(1),
        "kd_eval_examples": Integer(0),
        "rf_sigma_0": Number(),
        "rf_width": Integer(1),
        "baseline_steps": Integer(0),
        "baseline_delta": Number(),
    }

    def tau(self, k: int) -> float:
        """τ of Theorem 3: the configured value or 1/ln²(k)."""
        return self.kd_tau if self.kd_tau > 0 else 1.0 / math.log(k) ** 2


@dataclass
class SimConfig(Settings):
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

    constraints: ClassVar[dict[str, Constraint]] = {"seed": Integer(0), "n_seeds": Integer(1)}

    def step_elements(self) -> int:
        """(unit, patch) pairs of a training step of the single models: U·N·P, U = S·k·m (the
        size of the pre-activations; :func:`multiview.threads.default_threads` reads it)."""
        return self.n_seeds * self.data.k * self.model.m * self.data.n_train * self.data.P

    @classmethod
    def starting_point(cls, raw: dict[str, Any], base: SimConfig | None) -> SimConfig:
        """A TOML file may start from a preset: a top-level ``preset = "name"``."""
        preset = raw.pop("preset", None)
        return get_preset(preset) if preset is not None else super().starting_point(raw, base)


def preset_names() -> list[str]:
    return list(PRESETS)


def preset_help() -> dict[str, str]:
    return {name: p.help for name, p in PRESETS.items()}


def get_preset(name: str) -> SimConfig:
    """A validated config: the defaults with the preset's overrides applied."""
    if not isinstance(name, str) or name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return SimConfig.from_dict(PRESETS[name].overrides)
