"""The stage registry: every stage of both protocols in one table (torch-free).

Each protocol (:data:`SYNTHETIC`: ``multiview simulate``, :data:`CIFAR`: ``multiview cifar``) has
its rows, in the order its stages run. A row says what a stage is called (``name``, the key of its
part of ``results.json``), what it needs (``requires``), what it is (``kind``), its names in tables
and figures (``label``, ``short``) and, for the synthetic protocol, the ``[protocol]`` settings its
checkpoint depends on (``keys``: a checkpoint is reused when the config outside ``[protocol]`` and
these settings are unchanged; CIFAR checkpoints are per model, keyed in :mod:`multiview.cifar.fit`).

The protocols, reports, figures, sweep tables and both configs read this table. Adding a stage
is one row here and its function (registered with :func:`multiview.driver.implements`); a new
``[protocol]`` setting that stages depend on is one more name in a row's ``keys`` (or in
:data:`KD_KEYS` for every stage that trains a student).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SYNTHETIC, CIFAR = "synthetic", "cifar"
METHOD, BASELINE, ANALYSIS = "method", "baseline", "analysis"

KD_OBJECTIVE_KEYS = (
    "kd_objective", "kd_tau", "kd_eta_ratio", "kd_t", "kd_temperature", "kd_teacher_scale", "kd_steps"
)  # fmt: skip
"""The ``[protocol]`` settings of a distilled student's objective and step budget (the students of
the fixed-feature baselines depend on these alone: they take the baselines' steps)."""
KD_KEYS = (*KD_OBJECTIVE_KEYS, "kd_flow_time", "kd_step", "kd_delta", "kd_log_every", "kd_eval_examples")
"""The ``[protocol]`` settings of a distilled CNN student (every stage that trains one depends on them)."""
ENSEMBLE_KD_KEYS = ("ensemble_combine", *KD_KEYS)
"""The settings of a student distilled from an ensemble (its teacher combines the members' outputs)."""
BASELINE_KEYS = (
    "ensemble_combine", *KD_OBJECTIVE_KEYS,
    "training_average_K", "rf_sigma_0", "baseline_steps", "baseline_delta",
)  # fmt: skip
"""The ``[protocol]`` settings of a fixed-feature family (its single models, ensemble, average, KD)."""


@dataclass(frozen=True)
class Stage:
    """One stage. ``kind``: ``method`` (models with test errors: a row of the methods tables),
    ``baseline`` (a fixed-feature family that runs the first four methods again) or ``analysis``
    (a measurement over other stages' models)."""

    name: str
    kind: str
    label: str
    short: str
    requires: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()


# fmt: off
REGISTRY: dict[str, tuple[Stage, ...]] = {
    SYNTHETIC: (
        Stage("single", METHOD, "single models", "single"),
        Stage("ensemble", METHOD, "ensemble", "ensemble", ("single",), ("ensemble_combine",)),
        Stage("training_average", METHOD, "training the average", "training avg.",
              keys=("training_average_K",)),
        Stage("kd", METHOD, "knowledge distillation", "KD", ("single",), ENSEMBLE_KD_KEYS),
        Stage("kd_onehot", METHOD, "KD from a one-hot teacher", "KD one-hot", ("single",), ENSEMBLE_KD_KEYS),
        Stage("self_kd", METHOD, "self-distillation", "self-KD", ("single",), KD_KEYS),
        Stage("ensemble_of_kd", METHOD, "ensemble of KD students", "ens. of KD", ("kd",), ENSEMBLE_KD_KEYS),
        Stage("random_features", BASELINE, "random features", "RF", keys=(*BASELINE_KEYS, "rf_width")),
        Stage("ntk", BASELINE, "NTK", "NTK", keys=BASELINE_KEYS),
    ),
    CIFAR: (
        Stage("single", METHOD, "single models", "single"),
        Stage("ensemble", METHOD, "ensemble", "ensemble", ("single",)),
        Stage("training_average", METHOD, "training the average", "training avg."),
        Stage("kd", METHOD, "knowledge distillation", "KD", ("single",)),
        Stage("self_kd", METHOD, "self-distillation", "self-KD", ("single",)),
        Stage("ensemble_of_kd", METHOD, "ensemble of KD students", "ens. of KD", ("kd",)),
        Stage("channel_split", ANALYSIS, "channel split", "channel split", ("single",)),
        Stage("overlap", ANALYSIS, "overlap of the wrong sets", "overlap", ("single", "ensemble")),
    ),
}
# fmt: on


def of(protocol: str, kind: str | None = None) -> tuple[Stage, ...]:
    """The stages of ``protocol`` in the order they run (only those of ``kind``, when given)."""
    return tuple(s for s in REGISTRY[protocol] if kind in (None, s.kind))


def names(protocol: str, kind: str | None = None) -> tuple[str, ...]:
    """The names of :func:`of`."""
    return tuple(s.name for s in of(protocol, kind))


def get(protocol: str, name: str) -> Stage:
    """The row of stage ``name``; an unknown name is a :class:`ValueError` naming the choices."""
    for s in of(protocol):
        if s.name == name:
            return s
    raise ValueError(f"unknown stage {name!r}; choose from {', '.join(names(protocol))}")


def resolve(protocol: str, requested: Iterable[str]) -> list[str]:
    """The ``requested`` stages plus what they need, in the order they run."""
    wanted: set[str] = set()

    def add(name: str) -> None:
        wanted.add(name)
        for dep in get(protocol, name).requires:
            add(dep)

    for name in requested:
        add(name)
    return [name for name in names(protocol) if name in wanted]
