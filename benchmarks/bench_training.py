"""Training-step benchmarks: seed batching against a loop, and the step against the GEMM peak.

Both use the ``default`` preset's shapes. Every ratio is measured in one process, one after the
other, on the same device.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from benchmarks.common import time_call
from multiview import precision
from multiview.config import SimConfig, get_preset
from multiview.data import MultiViewDistribution
from multiview.losses import LabelObjective
from multiview.model import TwoLayerCNN, init_weights
from multiview.train import train


def _setup(cfg: SimConfig, device: torch.device):
    dtype = torch.float64 if cfg.train.dtype == "float64" else torch.float32
    dist = MultiViewDistribution(cfg.data, cfg.seed)
    batch = dist.sample(cfg.data.n_train, "train", device, dtype)
    return dist, batch, dist.inputs(batch, seen=True), dtype


def _net(cfg: SimConfig, dist, indices: list[int], device, dtype) -> TwoLayerCNN:
    m = cfg.model
    W = init_weights(
        cfg.seed,
        "model",
        indices,
        cfg.data.k,
        m.m,
        dist.weight_dim(cfg.data.n_train),
        m.sigma_0,
        device,
        dtype,
    )
    return TwoLayerCNN(W, m.q, m.varrho, m.sigma_0)


def batched_vs_loop(device: torch.device, steps: int = 30, seeds: int = 10) -> dict[str, Any]:
    """S seeds trained in one tensor against a loop of S single-seed runs (same code, same steps)."""
    cfg = get_preset("default").with_overrides({"n_seeds": seeds})
    dist, batch, inputs, dtype = _setup(cfg, device)
    tcfg = dataclasses.replace(cfg.train, max_steps=steps, loss_threshold=0.0, log_every=10**9)
    obj = LabelObjective(batch.y)

    def batched() -> None:
        train(_net(cfg, dist, list(range(seeds)), device, dtype), inputs, obj, seeds, tcfg)

    def loop() -> None:
        for i in range(seeds):
            train(_net(cfg, dist, [i], device, dtype), inputs, obj, 1, tcfg)

    tb = time_call(batched, device, repeats=3, warmup=1)
    tl = time_call(loop, device, repeats=3, warmup=1)
    speedup = tl["median"] / tb["median"]
    target = 5.0 if device.type == "cuda" else 1.5
    return {
        "seeds": seeds,
        "steps": steps,
        "batched_seconds": tb["median"],
        "loop_seconds": tl["median"],
        "speedup": speedup,
        "target": target,
        "met": speedup >= target,
    }


def step_vs_gemm_peak(
    device: torch.device, noise_model: str = "gaussian", steps: int = 20, compiled: bool = False
) -> dict[str, Any]:
    """Achieved FLOP/s of a training step against the GEMM peak measured on the same shapes.

    The step's FLOPs are those of its two products, (U, D) × (D, n·P) forward and
    (U, n·P) × (n·P, D) backward, U = S·k·m; the peak is the same two products timed alone.
    Under the orthogonal noise model D = 2k, the products are thin and the step is bound by the
    element-wise work, which this ratio makes visible; there the forward product is a gather
    when each patch carries at most one feature (``OrthogonalInputs.feature``), and only the
    backward one is counted.
    """
    cfg = get_preset("default").with_overrides({"data.noise_model": noise_model, "train.compile": compiled})
    precision.configure(cfg.train, device)
    dist, batch, inputs, dtype = _setup(cfg, device)
    S, k, m = cfg.n_seeds, cfg.data.k, cfg.model.m
    U = S * k * m
    nP = cfg.data.n_train * cfg.data.P
    K = 2 * k if noise_model == "orthogonal" else cfg.data.d
    tcfg = dataclasses.replace(cfg.train, max_steps=steps, loss_threshold=0.0, log_every=10**9)
    obj = LabelObjective(batch.y)
    net = _net(cfg, dist, list(range(S)), device, dtype)

    def step_run() -> None:
        train(net, inputs, obj, S, tcfg)

    t_step = time_call(step_run, device, repeats=3, warmup=1)["median"] / (steps + 1)
    A = torch.randn(U, K, device=device, dtype=dtype)
    B = torch.randn(K, nP, device=device, dtype=dtype)
    G = torch.randn(U, nP, device=device, dtype=dtype)
    C = torch.randn(nP, K, device=device, dtype=dtype)
    t_fwd = time_call(lambda: A @ B, device, repeats=10, warmup=3)["min"]
    t_bwd = time_call(lambda: G @ C, device, repeats=10, warmup=3)["min"]
    products = 1 if getattr(inputs, "feature", None) is not None else 2
    flops = products * (2 * U * K * nP)
    peak = flops / (t_bwd if products == 1 else t_fwd + t_bwd)
    achieved = flops / t_step
    precision.configure(dataclasses.replace(cfg.train, compile=False), device)
    return {
        "noise_model": noise_model,
        "compiled": compiled,
        "shapes": {"U=S·k·m": U, "D": K, "n·P": nP},
        "step_seconds": t_step,
        "gemm_seconds": t_bwd if products == 1 else t_fwd + t_bwd,
        "products": products,
        "gemm_peak_gflops": peak / 1e9,
        "achieved_gflops": achieved / 1e9,
        "fraction_of_peak": achieved / peak,
        "target": 0.5,
        "met": achieved / peak >= 0.5,
    }


def stream_triad(n: int, device: torch.device, dtype: torch.dtype = torch.float32) -> float:
    """Bytes per second of the STREAM triad a = b + s·c on arrays of ``n`` elements (3 arrays
    moved: two read, one written), the best of several calls."""
    b = torch.rand(n, device=device, dtype=dtype)
    c = torch.rand(n, device=device, dtype=dtype)
    a = torch.empty_like(b)
    t = time_call(lambda: torch.add(b, c, alpha=3.0, out=a), device, repeats=10, warmup=3)["min"]
    return 3 * n * b.element_size() / t


def orthogonal_step_passes(q: int, blocked: bool) -> dict[str, float]:
    """How many (U, n·P) arrays one training step of the orthogonal model moves through main
    memory, pass by pass (U = S·k·m units, n·P training patches; the (U, 2k) and (n·P, 2k)
    factors are small). ``blocked``: the forward pass runs in cache-sized blocks of examples
    (``TwoLayerCNN.forward`` on a CPU) and the backward pass in cache-sized blocks of units
    (``backprop_to_weights``), so that only these reach main memory: the forward pass's read of
    the noise coordinates and write of the slopes; the backward pass's read of the slopes, their
    write back (scaled by dL/dF in place) and the gradient's write (its mean and both norms of
    the relative step size are taken in cache); the update W ← W − η·g (2 reads, 1 write; the
    norms of the updated rows in cache). Otherwise (arrays that fit the cache whole, or a GPU)
    each pass is counted:

    * pre-activations: the gathered feature coordinate (1 write), times its coefficient (1 + 1),
      plus the noise coordinates times ‖ξ‖ (2 + 1);
    * the smoothed ReLU and its derivative (``act_and_grad_eager``): clamp (1 + 1), scale (1 + 1),
      t^(q−1) by repeated squaring, shift and clamp in place (2 + 2), the (ϱ/q)·t·t^(q−1) term
      (3 + 1); the per-class sums of the activation (1 read);
    * the backward pass: the slopes times dL/dF (1 + 1), the feature product reads them (1), the
      noise part of the gradient (1 + 1), the mean over examples (1 + 1); the relative step
      size: the norms of the parameters and of the gradient (1 + 1); the update (2 + 1).
    """
    if blocked:
        return {"noise coordinates read": 1, "slopes written": 1, "backward": 1 + 1 + 1, "update": 3}
    backward = {"backward": 2 + 1 + 2, "mean over examples": 2, "step size": 2, "update": 3}
    e = max(q - 1, 1)
    squarings = e.bit_length() - 1  # t², t⁴, … up to the highest bit of q − 1
    multiplies = bin(e).count("1") - 1  # the other set bits, multiplied in place
    copy = 0 if e == 2 else 2  # the first factor copied into the output (t² is written there)
    power = 2 * squarings + 3 * multiplies + copy
    return {
        "pre-activations": 1 + 2 + 3,
        "activation and derivative": 2 + 2 + power + 2 + 2 + 4,
        "per-class sums": 1,
        **backward,
    }


FUSED_PASSES = 6.0
"""What a fused step must move at least: the noise coordinates read once for the pre-activations
and their norms, the slopes written once and read once for the gradient, and the noise
coordinates read and written once by the update."""


def step_vs_bandwidth(
    device: torch.device, preset: str = "paper", steps: int = 10, **overrides: Any
) -> dict[str, Any]:
    """The orthogonal model's training step against the memory bandwidth of this machine.

    The step is memory-bound: its one product is thin ((U, n·P) × (n·P, 2k)), and everything else
    is element-wise passes over (U, n·P) arrays. The bytes it moves through main memory are
    counted pass by pass (:func:`orthogonal_step_passes`); the bandwidth available is a STREAM triad on arrays
    of the same size, timed in the same process. ``floor_fraction`` compares the step with the
    time a fused step moving :data:`FUSED_PASSES` arrays would take at the triad's bandwidth.
    ``cpu_fraction_of_bandwidth`` uses the step's CPU seconds instead of its wall time: with one
    thread on a machine other jobs keep busy, the step's share of a core (the triad, timed in
    short calls, mostly runs uninterrupted).
    """
    cfg = get_preset(preset).with_overrides({"data.noise_model": "orthogonal", **overrides})
    dist, batch, inputs, dtype = _setup(cfg, device)
    S, k, m, q = cfg.n_seeds, cfg.data.k, cfg.model.m, cfg.model.q
    U, nP = S * k * m, cfg.data.n_train * cfg.data.P
    tcfg = dataclasses.replace(cfg.train, max_steps=steps, loss_threshold=0.0, log_every=10**9)
    net = _net(cfg, dist, list(range(S)), device, dtype)
    obj = LabelObjective(batch.y)
    timed = time_call(lambda: train(net, inputs, obj, S, tcfg), device, repeats=3, warmup=1)
    t_step = timed["min"] / (steps + 1)
    cpu_step = timed["cpu_min"] / (steps + 1) if "cpu_min" in timed else None
    array = U * nP * torch.finfo(dtype).bits // 8
    blocked = net._block(inputs) < len(inputs)
    passes = orthogonal_step_passes(q, blocked)
    moved = sum(passes.values()) * array
    triad = stream_triad(U * nP, device, dtype)
    achieved = moved / t_step
    return {
        "preset": preset,
        "overrides": overrides,
        "shapes": {"U=S·k·m": U, "n·P": nP, "array_MB": array / 1e6},
        "passes": passes,
        "blocked": blocked,
        "step_seconds": t_step,
        "bytes_per_step": moved,
        "achieved_GBps": achieved / 1e9,
        "triad_GBps": triad / 1e9,
        "fraction_of_bandwidth": achieved / triad,
        "floor_seconds": FUSED_PASSES * array / triad,
        "floor_fraction": FUSED_PASSES * array / triad / t_step,
        "threads": torch.get_num_threads(),
        "cpu_step_seconds": cpu_step,
        "cpu_fraction_of_bandwidth": moved / cpu_step / triad if cpu_step else None,
        "target": 0.5,
        "met": achieved / triad >= 0.5,
    }
