"""Training-step benchmarks: seed batching against a loop, the step against the GEMM peak (both
at the ``default`` preset's shapes), and the orthogonal model's step against main memory's
bandwidth and against its roofline (at a preset's shapes; :func:`machine_roofline` for the whole
machine). Every ratio is measured in one process, one after the other, on the same device.
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
from multiview.model import BLOCK_SCRATCH_BYTES, TwoLayerCNN, init_weights
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


def _power_passes(q: int, buffers: bool = False) -> int:
    """Passes over a (U, n·P) array of t^(q−1) by repeated squaring (:func:`multiview.model.int_power`):
    each square reads and writes, each factor after the first reads two arrays and writes one;
    the first factor is not copied but for q − 1 = 1 (t itself) and, with ``buffers`` (an output
    and a scratch, as the blocked forward pass gives), an even q − 1 of more than one factor
    (t^(2j) kept in the output before the next square overwrites the scratch)."""
    e = max(q - 1, 1)
    squarings = e.bit_length() - 1  # t², t⁴, … up to the highest bit of q − 1
    multiplies = e.bit_count() - 1  # the other set bits
    copy = 2 if e == 1 or (buffers and e % 2 == 0 and multiplies > 0) else 0
    return 2 * squarings + 3 * multiplies + copy


def orthogonal_step_passes(q: int, blocked: bool) -> dict[str, int]:
    """How many (U, n·P) arrays one training step of the orthogonal model moves through main
    memory, pass by pass (U = S·k·m units, n·P training patches; the (U, 2k) and (n·P, 2k)
    factors are small). ``blocked``: the forward pass runs in cache-sized blocks of examples
    (``TwoLayerCNN.forward`` on a CPU) and the backward pass in cache-sized blocks of units
    (``backprop_to_weights``), so that only these reach main memory: the forward pass's read of
    the noise coordinates and write of the slopes; the backward pass's read of the slopes (scaled
    by dL/dF into a scratch block) and write of the gradient (its mean and both norms of the
    relative step size are taken in cache); the update W ← W − η·g (2 reads, 1 write; the norms
    of the updated rows in cache). The other passes run in cache
    (:func:`orthogonal_step_cache_passes`). Otherwise (arrays that fit the cache whole, or a GPU)
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
        return {"noise coordinates read": 1, "slopes written": 1, "backward": 1 + 1, "update": 3}
    backward = {"backward": 2 + 1 + 2, "mean over examples": 2, "step size": 2, "update": 3}
    return {
        "pre-activations": 1 + 2 + 3,
        "activation and derivative": 2 + 2 + _power_passes(q) + 2 + 2 + 4,
        "per-class sums": 1,
        **backward,
    }


def orthogonal_step_cache_passes(q: int) -> dict[str, int]:
    """The passes over (U, n·P) arrays of a blocked step (:func:`orthogonal_step_passes` with
    ``blocked``) that stay in cache, block by block; with the main-memory ones they are every
    pass of the step taken whole:

    * forward, per block of examples: the gather (1 write), times the coefficient (1 + 1), plus
      the noise coordinates times ‖ξ‖ (1 + 1: the coordinates come from main memory); clamp,
      scale, shift, clamp (2 each), t^(q−1) written into the slopes (whose one write to main
      memory is counted there), the (ϱ/q)·t·t^(q−1) term (3 + 1); the sums over patches (1);
    * backward, per block of classes: the slopes times dL/dF into the scratch block (1 write),
      the feature product and the noise columns read it (1 + 1), the mean over examples divides
      the gradient's rows (1 + 1), their norms (1);
    * the update: the norms of the updated rows (1).
    """
    return {
        "pre-activations": 1 + 2 + 2,
        "activation and derivative": 2 + 2 + _power_passes(q, buffers=True) - 1 + 2 + 2 + 4,
        "per-class sums": 1,
        "backward": 1 + 1 + 1,
        "mean over examples": 2,
        "step size": 1,
        "update": 1,
    }


FUSED_PASSES = 6.0
"""What a fused step must move at least: the noise coordinates read once for the pre-activations
and their norms, the slopes written once and read once for the gradient, and the noise
coordinates read and written once by the update."""


def gemm_peak(device: torch.device, dtype: torch.dtype = torch.float32, size: int = 1024) -> float:
    """FLOP/s of a square (size × size) matrix product, the best of several calls: the
    arithmetic roof of this device for the step's one product."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    c = torch.empty_like(a)
    return 2 * size**3 / time_call(lambda: torch.mm(a, b, out=c), device, repeats=10, warmup=3)["min"]


def step_vs_bandwidth(
    device: torch.device, preset: str = "paper", steps: int = 10, **overrides: Any
) -> dict[str, Any]:
    """The orthogonal model's training step against the memory bandwidth of this machine, and
    against its roofline: the limit that bounds the step as it runs.

    Its one product is thin ((U, n·P) × (n·P, 2k)), and everything else is element-wise passes
    over (U, n·P) arrays. **Main memory**: the bytes the step moves through main memory are
    counted pass by pass (:func:`orthogonal_step_passes`); the bandwidth available is a STREAM
    triad on arrays of the same size, timed in the same process (``fraction_of_bandwidth``).
    ``floor_fraction`` compares the step with the time a fused step moving :data:`FUSED_PASSES`
    arrays would take at that bandwidth. ``cpu_fraction_of_bandwidth`` uses the step's CPU
    seconds instead of its wall time: with one thread on a machine other jobs keep busy, the
    step's share of a core (the triad, timed in short calls, mostly runs uninterrupted).

    **Roofline** (``fraction_of_roofline``): the time the step cannot go below, kernel by
    kernel, each at the limit of the level its data lives in, all measured in the same process:
    the main-memory passes at the triad above; when the step runs in blocks, the passes that stay
    in cache (:func:`orthogonal_step_cache_passes`) at a triad on arrays of one forward block's
    size (a third of :data:`multiview.model.BLOCK_SCRATCH_BYTES` each); and the feature
    product's 2·U·n·P·2k FLOPs at the peak of a square matrix product (:func:`gemm_peak`) where
    that takes longer than reading its operand. ``roofline_terms`` gives the three parts.
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
    cache_passes = orthogonal_step_cache_passes(q) if blocked else {}
    moved = sum(passes.values()) * array
    limits = roofline_limits(device, dtype, U * nP, blocked)
    triad = limits["triad_GBps"] * 1e9
    product_flops = 2 * U * nP * 2 * k
    terms = roofline_terms(moved, sum(cache_passes.values()) * array, array, product_flops, limits)
    roofline = sum(terms.values())
    achieved = moved / t_step
    return {
        "preset": preset,
        "overrides": overrides,
        "shapes": {"U=S·k·m": U, "n·P": nP, "array_MB": array / 1e6},
        "passes": passes,
        "cache_passes": cache_passes,
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
        "cache_triad_GBps": limits["cache_triad_GBps"],
        "gemm_peak_gflops": limits["gemm_peak_gflops"],
        "product_gflop": product_flops / 1e9,
        "dtype": str(dtype).removeprefix("torch."),
        "roofline_terms": terms,
        "roofline_seconds": roofline,
        "fraction_of_roofline": roofline / t_step,
        "roofline_met": roofline / t_step >= 0.5,
    }


def roofline_limits(
    device: torch.device, dtype: torch.dtype, elements: int, blocked: bool, threads: int | None = None
) -> dict[str, float]:
    """The limits of :func:`step_vs_bandwidth`'s roofline, measured with ``threads`` torch threads
    (None: as set): the STREAM triad on arrays of ``elements`` numbers, the triad on arrays of
    one forward block's size when the step runs in blocks (else the first again), the GEMM peak."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        triad = stream_triad(elements, device, dtype)
        size = torch.finfo(dtype).bits // 8
        cache = stream_triad(BLOCK_SCRATCH_BYTES // 3 // size, device, dtype) if blocked else triad
        peak = gemm_peak(device, dtype)
    finally:
        torch.set_num_threads(before)
    return {
        "threads": threads or before,
        "triad_GBps": triad / 1e9,
        "cache_triad_GBps": cache / 1e9,
        "gemm_peak_gflops": peak / 1e9,
    }


def roofline_terms(
    main_bytes: float, cache_bytes: float, array_bytes: float, product_flops: float, limits: dict[str, float]
) -> dict[str, float]:
    """Seconds of a step at its limits (:func:`roofline_limits`): the bytes through main memory at
    the triad, the bytes in cache at the cache's triad, and the product's arithmetic at the GEMM
    peak beyond the time its operand (one array) takes to read."""
    cache_bw = limits["cache_triad_GBps"] * 1e9
    arithmetic = product_flops / (limits["gemm_peak_gflops"] * 1e9)
    return {
        "main memory": main_bytes / (limits["triad_GBps"] * 1e9),
        "cache": cache_bytes / cache_bw,
        "product arithmetic": max(0.0, arithmetic - array_bytes / cache_bw),
    }


def machine_roofline(device: torch.device, step: dict[str, Any], cores: int) -> dict[str, Any]:
    """The roofline of one step of :func:`step_vs_bandwidth`'s report ``step`` at the limits of
    ``cores`` threads (the whole machine): what ``cores`` processes stepping side by side, or
    one process with ``cores`` threads, are measured against."""
    dtype = getattr(torch, step["dtype"])
    array = step["shapes"]["array_MB"] * 1e6
    elements = step["shapes"]["U=S·k·m"] * step["shapes"]["n·P"]
    limits = roofline_limits(device, dtype, elements, step["blocked"], threads=cores)
    cache_bytes = sum(step["cache_passes"].values()) * array
    terms = roofline_terms(step["bytes_per_step"], cache_bytes, array, step["product_gflop"] * 1e9, limits)
    return {"cores": cores, "limits": limits, "terms": terms, "seconds": sum(terms.values())}
