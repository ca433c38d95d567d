"""Named configurations: nested overrides of the defaults in :mod:`multiview.config`.

``default`` is the dataclass defaults; ``paper`` is the regime where the simulator reproduces the
theory (docs/regime.md tells how it was found); the ablations each switch off one ingredient of
the mechanism (docs/ablations.md gives their measured outcomes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    help: str
    overrides: dict[str, Any] = field(default_factory=dict)


SMOKE = {
    "data": {"k": 4, "d": 64, "P": 8, "s": 1.0, "n_train": 120, "n_test": 400, "mu": 0.2},
    "model": {"m": 2},
    "train": {"max_steps": 150, "log_every": 25},
    "n_seeds": 3,
    "protocol": {"kd_steps": 150, "baseline_steps": 100, "rf_width": 32},
}

PRESETS: dict[str, Preset] = {
    "default": Preset("the main job: the paper's regime at a size two CPU cores run in about a minute"),
    "smoke": Preset("tiny problem (k=4, N=120, 3 seeds); seconds; for tests", SMOKE),
}
