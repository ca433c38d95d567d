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


# The regime where the mechanism is visible at k = 10 (docs/regime.md): the d → ∞ noise model,
# one patch per feature with enough cross-class features that a competitor is nearly always
# present, a sharp power (q = 6) and a small initialization, trained to a training loss of 1e-3.
PAPER = {
    "data": {
        "k": 10, "d": 200, "P": 16, "C_p": 1, "s": 4.6, "mu": 0.1, "rho": 0.1, "Gamma": 0.3,
        "gamma": 0.0, "sigma_p": 0.07, "noise_model": "orthogonal", "n_train": 500, "n_test": 50000,
    },
    "model": {"m": 4, "q": 6, "varrho": 0.1, "sigma_0": 0.001},
    "train": {"step": "relative", "lr": 1e9, "delta": 0.05, "max_steps": 4000, "loss_threshold": 1e-3},
    "n_seeds": 10,
}

SMOKE = {
    "data": {
        "k": 4, "d": 64, "P": 8, "C_p": 1, "s": 2.0, "mu": 0.2, "gamma": 0.0, "sigma_p": 0.1,
        "noise_model": "orthogonal", "n_train": 120, "n_test": 2000,
    },
    "model": {"m": 2, "q": 4, "sigma_0": 0.01},
    "train": {"step": "relative", "lr": 1e9, "delta": 0.1, "max_steps": 300, "log_every": 25},
    "n_seeds": 3,
    "protocol": {"kd_steps": 300, "baseline_steps": 100, "rf_width": 32},
}

PRESETS: dict[str, Preset] = {
    "default": Preset("the main job: the paper's regime at a size two CPU cores run in about a minute"),
    "smoke": Preset("tiny problem (k=4, N=120, 3 seeds); seconds; for tests", SMOKE),
    "paper": Preset("the regime that reproduces the theory at k=10 (10 seeds, 50,000 test examples)", PAPER),
}
