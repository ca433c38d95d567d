"""Scaling: time per training step against S, N, d, k, m (log-log slopes) and peak memory.

Each point runs in its own subprocess so that its peak resident memory (or CUDA peak
allocation) belongs to that point alone.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

POINT = r"""
import json, resource, sys, time, dataclasses
try:  # reset the peak-RSS counter inherited from the parent at fork (Linux)
    open("/proc/self/clear_refs", "w").write("5")
except OSError:
    pass
import torch
from multiview.config import get_preset
from multiview.data import MultiViewDistribution
from multiview.losses import LabelObjective
from multiview.model import TwoLayerCNN, init_weights
from multiview.train import train
over, device, steps = json.loads(sys.argv[1]), torch.device(sys.argv[2]), int(sys.argv[3])
cfg = get_preset("default").with_overrides(over)
dist = MultiViewDistribution(cfg.data, 0)
batch = dist.sample(cfg.data.n_train, "train", device)
inputs = dist.inputs(batch, seen=True)
m = cfg.model
D = dist.weight_dim(cfg.data.n_train)
W = init_weights(0, "model", list(range(cfg.n_seeds)), cfg.data.k, m.m, D, m.sigma_0, device)
net = TwoLayerCNN(W, m.q, m.varrho, m.sigma_0)
tcfg = dataclasses.replace(cfg.train, max_steps=steps, loss_threshold=0.0, log_every=10**9)
train(net, inputs, LabelObjective(batch.y), cfg.n_seeds, dataclasses.replace(tcfg, max_steps=2))
if device.type == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
t = time.perf_counter()
train(net, inputs, LabelObjective(batch.y), cfg.n_seeds, tcfg)
if device.type == "cuda":
    torch.cuda.synchronize()
dt = (time.perf_counter() - t) / (steps + 1)
if device.type == "cuda":
    mem = torch.cuda.max_memory_allocated() / 2**20
else:
    try:
        hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
        mem = int(hwm.split()[1]) / 1024
    except (OSError, IndexError):
        mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"step_seconds": dt, "peak_memory_mb": mem}))
"""

AXES = {
    "n_seeds": [2, 4, 8, 16],
    "data.n_train": [125, 250, 500, 1000],
    "data.k": [5, 10, 20, 40],
    "model.m": [2, 4, 8, 16],
}


def _point(overrides: dict[str, Any], device: str, steps: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", POINT, json.dumps(overrides), device, str(steps)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _slope(xs: list[float], ys: list[float]) -> float:
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=False)) / sum((a - mx) ** 2 for a in lx)


def scaling(device: str = "cpu", steps: int = 10, quick: bool = False) -> dict[str, Any]:
    axes = dict(AXES)
    # d matters only for explicit (Gaussian-noise) patches.
    axes["data.d"] = [100, 200, 400, 800]
    out: dict[str, Any] = {}
    for key, values in axes.items():
        values = values[:3] if quick else values
        base = {"data.noise_model": "gaussian"} if key == "data.d" else {}
        if key == "data.k":
            base["data.d"] = 2 * max(values) + 10
        points = [_point({**base, key: v}, device, steps) for v in values]
        times = [p["step_seconds"] for p in points]
        out[key] = {
            "values": values,
            "step_seconds": times,
            "peak_memory_mb": [p["peak_memory_mb"] for p in points],
            "loglog_slope": _slope(values, times),
        }
    return out
