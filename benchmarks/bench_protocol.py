"""The whole protocol at the ``default`` preset: wall time and where it goes."""

from __future__ import annotations

import tempfile
import time
from typing import Any

import torch

from multiview.config import get_preset
from multiview.protocol import run_protocol


def full_protocol(device: torch.device, preset: str = "default") -> dict[str, Any]:
    cfg = get_preset(preset)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results = run_protocol(cfg, device, out_dir=tmp)
    total = time.perf_counter() - t
    stages = {k: v for k, v in results["timing"].items() if k != "total"}
    return {
        "preset": preset,
        "seconds": total,
        "stages": stages,
        "share": {k: v / total for k, v in stages.items()},
        "target_seconds": 60.0,
        "met": total <= 60.0,
        "bounds_passed": sum(1 for b in results["bounds"] if b["passed"]),
        "bounds_judged": sum(1 for b in results["bounds"] if b["passed"] is not None),
    }
