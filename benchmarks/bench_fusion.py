"""Two ways to a faster orthogonal-model step that would keep every bit, measured on one step's arrays.

The step's numbers must stay those of the torch passes (stored results are compared value for
value), so each way is checked entry by entry against them before it is timed. On the preset's
training set and initial weights (one thread):

1. **Forward: the element-wise passes fused** (needs ``numba``, not a dependency of the project:
   ``pip install numba``; skipped without it). Per block of the forward pass
   (:meth:`multiview.model.TwoLayerCNN.forward`), one compiled loop per unit does what about ten
   torch passes do: the pre-activation fma(ξ-coordinate, ‖ξ_p‖, w_f·c_p) (torch's ``addcmul`` is a
   fused multiply-add), t = clamp(a, 0, ϱ)·(1/ϱ), t^(q−1) by the squarings of
   :func:`multiview.model.int_power`, and fma((ϱ/q)·t, t^(q−1), max(a − ϱ, 0)). The gather of
   each patch's feature coordinate (``index_select``) and the sums over patches (``torch.sum``)
   stay with torch: a gather is a copy, and the sums' order is torch's.
2. **The feature product transposed**, (2k, n·P) @ (n·P, U) instead of (U, n·P) @ (n·P, 2k): the
   library's faster shape, checked for equality on the shapes of the presets.
3. **The class factor spread over the patches** (:func:`multiview.model.times_class_factor`, taken):
   the backward pass's product of the slopes (G, m, n, P) with dL/dF (G, 1, n, 1), broadcast, or
   with dL/dF first spread to (G, 1, n, P).
4. **Log-softmax over a middle axis** (:func:`multiview.losses.log_softmax_classes`, taken): the
   loss's log-softmax over the classes of the (S, n, k) logits, forward and backward, by the
   library's last-axis kernel or with the classes moved to a middle axis.

    python benchmarks/bench_fusion.py                       # paper_kd
    python benchmarks/bench_fusion.py --preset paper --out benchmarks/fusion-cpu.json

Printed: each way's time against the torch passes it would replace, and whether every entry is
equal.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import time_call, write_report  # noqa: E402
from multiview.threads import use_threads  # noqa: E402

CPU = torch.device("cpu")


def _numba_block() -> Any:
    """The compiled per-block loop, or None without numba."""
    try:
        from llvmlite import ir
        from numba import njit, types
        from numba.extending import intrinsic
    except ImportError:
        return None

    @intrinsic
    def fma(typingctx, a, b, c):  # type: ignore[no-untyped-def]
        sig = types.float32(types.float32, types.float32, types.float32)

        def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
            f32 = ir.FloatType()
            fn = builder.module.declare_intrinsic("llvm.fma", [f32], ir.FunctionType(f32, [f32, f32, f32]))
            return builder.call(fn, args)

        return sig, codegen

    @njit(nogil=True, boundscheck=False, error_model="numpy")
    def block(W, gathered, value, norm, noise_col, varrho, inv, coef, power, slopes, slope_col):  # type: ignore[no-untyped-def]
        U, J = gathered.shape
        zero, one = np.float32(0.0), np.float32(1.0)
        pre = np.empty(J, np.float32)
        t = np.empty(J, np.float32)
        base = np.empty(J, np.float32)
        g = np.empty(J, np.float32)
        for u in range(U):
            noise = W[u, noise_col : noise_col + J]
            row = gathered[u]
            for j in range(J):
                pre[j] = fma(noise[j], norm[j], row[j] * value[j])
            for j in range(J):
                c = zero if pre[j] < zero else pre[j]
                c = varrho if c > varrho else c
                t[j] = c * inv
            if power == 0:
                for j in range(J):
                    g[j] = one if pre[j] > zero else zero
            else:
                e, first = power, True
                for j in range(J):
                    base[j] = t[j]
                while e:
                    if e & 1:
                        if first:
                            for j in range(J):
                                g[j] = base[j]
                            first = False
                        else:
                            for j in range(J):
                                g[j] = g[j] * base[j]
                    e >>= 1
                    if e:
                        for j in range(J):
                            base[j] = base[j] * base[j]
            out = slopes[u, slope_col : slope_col + J]
            for j in range(J):
                h = pre[j] - varrho
                h = zero if h < zero else h
                out[j] = g[j]
                row[j] = fma(coef * t[j], g[j], h)

    return block


def forward_fused(net: Any, inputs: Any, block_fn: Any) -> tuple:
    """:meth:`TwoLayerCNN.forward`'s blocked loop on one thread, the element-wise passes replaced by
    ``block_fn`` (``None``: timing the torch parts only, gather and sums)."""
    from multiview.model import act_and_grad_eager

    R, k, m, D = net.shape
    U, n, P = R * k * m, len(inputs), inputs.n_patches
    block = net._block(inputs)
    W = net.weights.reshape(U, D)
    per_unit = torch.empty(R, k, m, n)
    slopes = torch.empty(U, n * P)
    buf = torch.empty(3, U * block * P)
    for start in range(0, n, block):
        part = inputs[start : start + block]
        nb = len(part)
        J = nb * P
        act = buf[0, : U * J].view(U, J)
        if block_fn is None:
            pre = part.preactivations(W, net.init_std, net.init_key, out=act)
            act, _ = act_and_grad_eager(
                pre,
                net.q,
                net.varrho,
                buf[1, : U * J].view(U, J),
                slopes[:, start * P : start * P + J],
                buf[2, : U * J].view(U, J),
            )
        else:
            torch.index_select(W[:, : 2 * k], 1, part.feature.reshape(-1), out=act)
            block_fn(
                W.numpy(),
                act.numpy(),
                part.feature_value.reshape(-1).numpy(),
                part.noise_norm.reshape(-1).numpy(),
                2 * k + int(part.index[0]) * P,
                np.float32(net.varrho),
                np.float32(1.0 / net.varrho),
                np.float32(net.varrho / net.q),
                net.q - 1 if net.q > 1 else 0,
                slopes.numpy(),
                start * P,
            )
        torch.sum(act.view(R, k, m, nb, P), 4, out=per_unit[:, :, :, start : start + nb])
    return per_unit.sum(2).permute(0, 2, 1), slopes


def gather_and_sums(net: Any, inputs: Any) -> dict[str, float]:
    """Seconds of the forward's two torch parts that stay: the gathers and the patch sums."""
    R, k, m, D = net.shape
    U, n, P = R * k * m, len(inputs), inputs.n_patches
    block = net._block(inputs)
    W = net.weights.reshape(U, D)
    act = torch.empty(U * block * P)
    per_unit = torch.empty(R, k, m, n)
    parts = [inputs[s : s + block] for s in range(0, n, block)]

    def gathers() -> None:
        for part in parts:
            torch.index_select(
                W[:, : 2 * k], 1, part.feature.reshape(-1), out=act[: U * len(part) * P].view(U, -1)
            )

    def sums() -> None:
        for s, part in zip(range(0, n, block), parts, strict=True):
            nb = len(part)
            torch.sum(act[: U * nb * P].view(R, k, m, nb, P), 4, out=per_unit[:, :, :, s : s + nb])

    return {"gather": time_call(gathers, CPU, 10, 2)["min"], "patch sums": time_call(sums, CPU, 10, 2)["min"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="paper_kd")
    ap.add_argument("--out", default=None, help="write the report as JSON here")
    args = ap.parse_args()
    use_threads(1)
    from multiview.config import get_preset
    from multiview.run import Run, new_cnn

    cfg = get_preset(args.preset).with_overrides({"data.n_test": 1000, "data.noise_model": "orthogonal"})
    run = Run.create(cfg)
    net = new_cnn(run, "model", cfg.n_seeds)
    X = run.train_inputs
    R, k, m, D = net.shape
    U, n = R * k * m, len(X)
    report: dict[str, Any] = {"preset": args.preset, "U": U, "n·P": n * X.n_patches, "q": cfg.model.q}

    # 1. forward
    logits, slopes = (t.clone() for t in net.forward(X))
    eager = time_call(lambda: net.forward(X), CPU, 10, 2)["min"]
    kept = gather_and_sums(net, X)
    forward: dict[str, Any] = {"torch passes s": eager, **{f"{key} s": v for key, v in kept.items()}}
    block_fn = _numba_block()
    if block_fn is not None:
        fused_logits, fused_slopes = forward_fused(net, X, block_fn)
        forward["fused equal"] = bool(torch.equal(fused_logits, logits) and torch.equal(fused_slopes, slopes))
        forward["fused s"] = time_call(lambda: forward_fused(net, X, block_fn), CPU, 10, 2)["min"]
    report["forward"] = forward

    # 2. the feature product transposed, on the presets' shapes
    g = torch.Generator().manual_seed(1)
    checked, differ = 0, []
    for U_, nP, k2 in itertools.product((40, 160, 400, 1600), (192, 2160, 8000, 16000), (12, 20, 40)):
        s = torch.randn(U_, nP, generator=g)
        coef = torch.zeros(nP, k2)
        coef[torch.arange(nP), torch.randint(0, k2, (nP,), generator=g)] = torch.rand(nP, generator=g)
        checked += 1
        if not torch.equal(s @ coef, (coef.T.contiguous() @ s.T).T):
            differ.append([U_, nP, k2])
    coef = X.coef.reshape(-1, 2 * k)
    coef_t = coef.T.contiguous()
    report["feature product"] = {
        "product s": time_call(lambda: slopes @ coef, CPU, 10, 2)["min"],
        "transposed s": time_call(lambda: coef_t @ slopes.T, CPU, 10, 2)["min"],
        "shapes checked": checked,
        "shapes that differ": differ,
    }

    from multiview.losses import (
        log_softmax_last_axis,
        log_softmax_middle_axis,
        middle_axis_route_agrees,
        output_and_grad,
        same_bits,
    )
    from multiview.model import spreads_class_factor

    # 3. the class factor, broadcast along the patches or spread over them first
    P = X.n_patches
    per_class = slopes.view(R * k, m, n, P)
    factor = logits.permute(0, 2, 1).reshape(R * k, 1, n, 1)
    product = torch.empty_like(per_class)
    spread = factor.expand(R * k, 1, n, P).contiguous()
    report["class factor"] = {
        "broadcast s": time_call(lambda: torch.mul(per_class, factor, out=product), CPU, 10, 2)["min"],
        "spread s": time_call(
            lambda: torch.mul(per_class, factor.expand(R * k, 1, n, P).contiguous(), out=product), CPU, 10, 2
        )["min"],
        "equal": bool(torch.equal(torch.mul(per_class, spread), per_class * factor)),
        "spread taken": spreads_class_factor(per_class),
    }

    # 4. the loss's log-softmax: the last-axis kernel or the middle-axis route, forward + backward
    grad_out = torch.randn(logits.shape, generator=g)
    out_a, grad_a = output_and_grad(log_softmax_last_axis, logits, grad_out)
    out_b, grad_b = output_and_grad(log_softmax_middle_axis, logits, grad_out)
    report["log-softmax"] = {
        "last axis s": time_call(
            lambda: output_and_grad(log_softmax_last_axis, logits, grad_out), CPU, 20, 2
        )["min"],
        "middle axis s": time_call(
            lambda: output_and_grad(log_softmax_middle_axis, logits, grad_out), CPU, 20, 2
        )["min"],
        "equal bits": same_bits(out_a, out_b) and same_bits(grad_a, grad_b),
        "route taken": middle_axis_route_agrees(logits.dtype, k),
    }

    print(f"{args.preset}: U = {U}, n·P = {n * X.n_patches}, q = {cfg.model.q}, one thread (ms)")
    f = report["forward"]
    print(f"forward, torch passes          {1e3 * f['torch passes s']:7.2f}")
    print(f"  of which the gathers          {1e3 * f['gather s']:7.2f}  (a copy: stays)")
    print(f"  of which the patch sums       {1e3 * f['patch sums s']:7.2f}  (torch's order: stays)")
    if "fused s" in f:
        print(
            f"forward, element-wise fused    {1e3 * f['fused s']:7.2f}  "
            f"({f['torch passes s'] / f['fused s']:.2f}× the torch passes; "
            f"every entry equal: {f['fused equal']})"
        )
    else:
        print("forward, element-wise fused       –     (numba is not installed: pip install numba)")
    p = report["feature product"]
    equal = p["shapes checked"] - len(p["shapes that differ"])
    print(
        f"feature product                {1e3 * p['product s']:7.2f}; transposed "
        f"{1e3 * p['transposed s']:.2f} ({p['product s'] / p['transposed s']:.2f}×); "
        f"equal on {equal} of {p['shapes checked']} shapes"
    )
    c = report["class factor"]
    print(
        f"class factor, broadcast        {1e3 * c['broadcast s']:7.2f}; spread over the patches first "
        f"{1e3 * c['spread s']:.2f} ({c['broadcast s'] / c['spread s']:.2f}×); equal: {c['equal']}; "
        f"spread taken here: {c['spread taken']}"
    )
    ls = report["log-softmax"]
    print(
        f"log-softmax fw+bw, last axis   {1e3 * ls['last axis s']:7.3f}; middle axis "
        f"{1e3 * ls['middle axis s']:.3f} ({ls['last axis s'] / ls['middle axis s']:.2f}×); "
        f"same bits: {ls['equal bits']}; route taken: {ls['route taken']}"
    )
    if args.out:
        write_report(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
