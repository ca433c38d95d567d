"""The training loop: full-batch GD (the paper) or mini-batch SGD, with a per-run step size.

A *learner* holds R replicas in one parameter tensor (leading axis R) and gives
``forward(X) -> (logits (R, n, k), cache)`` and ``backward(X, cache, dlogits) -> grad``; X is
anything indexable by example (``len(X)``, ``X[idx]``): patch inputs (:mod:`multiview.inputs`)
or precomputed features. An
*objective* (``multiview.losses``) turns replica logits into G runs (``combine``) and scores
them; each run is an independent training run (one seed, or K sub-networks trained as their
average). Per-run losses are summed before differentiation, so the gradient each run receives is
exactly its own: S batched seeds are S independent runs.

Step size. ``step = "constant"`` is plain GD with η = ``lr``. ``step = "normalized"`` uses, for
each run s, η_s = min(``lr``, δ/‖g_s‖) with g_s that run's full gradient. Gradient flow
dW/dt = −∇L(W) and normalized flow dW/du = −∇L/‖∇L‖ trace the same path at different speeds
(du = ‖∇L‖·dt), so this is a change of clock, not of the path: every step moves the weights by
at most δ along the current gradient, which keeps the discretization as close to the flow as
plain GD with a step of δ/‖g‖ would. It removes the crawl of the flat q-th-power phase at small
σ_0 (where ‖g‖ ∝ σ_0^(q−1)) without changing which view wins the lottery. The gradient-flow time
t = Σ_steps η_s reached by each run is recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from multiview.config import TrainConfig
from multiview.losses import margin_correct
from multiview.seeding import generator


class Learner(Protocol):
    @property
    def params(self) -> Tensor: ...

    def forward(self, X: Any) -> tuple[Tensor, Any]: ...

    def backward(
        self,
        X: Any,
        cache: Any,
        dlogits: Tensor,
        grad: Tensor | None = None,
        accumulate: bool = False,
        mean_over: int = 1,
        grad_norms: Tensor | None = None,
    ) -> Tensor: ...

    def scratch_bytes_per_example(self, X: Any) -> int: ...


class Objective(Protocol):
    y: Tensor

    def combine(self, logits: Tensor) -> Tensor: ...

    def __call__(self, run_logits: Tensor, idx: Tensor | slice) -> tuple[Tensor, Tensor]: ...


ProbeFn = Callable[[Tensor], dict[str, Tensor]]
ProgressFn = Callable[[int, int, int, float], None]


@dataclass
class TrainResult:
    """What one call of :func:`train` did. Per-run tensors have shape (G,)."""

    steps: Tensor
    converged: Tensor
    final_loss: Tensor
    final_train_accuracy: Tensor
    flow_time: Tensor
    seconds: float
    stopped_by: list[str] = field(default_factory=list)
    history: dict[str, Any] = field(default_factory=dict)


def equal_blocks(total: int, preferred: int, minimum: int) -> int | None:
    """Items per block when ``total`` items are cut into blocks of about ``preferred`` items and
    at least ``minimum``: blocks of equal size, the last no larger; None when that leaves one
    block, or a last block under ``minimum`` (take the items in one pass then). The blocks of
    :func:`descend` and of :func:`multiview.model.backprop_to_weights`."""
    block = max(minimum, preferred)
    blocks = -(-total // block)
    if blocks < 2:
        return None
    block = -(-total // blocks)
    if total - (blocks - 1) * block < minimum:
        return None
    return block


def chunk_size(learner: Learner, X: Any, cfg: TrainConfig) -> int:
    """Examples per matrix product: ``cfg.chunk_size``, or as many as fit ``cfg.memory_budget_mb``."""
    n = len(X)
    if cfg.chunk_size > 0:
        return min(cfg.chunk_size, n)
    per_example = max(1, learner.scratch_bytes_per_example(X))
    return max(1, min(n, cfg.memory_budget_mb * 2**20 // per_example))


EVAL_SCRATCH_BYTES = 12 * 2**20
"""Scratch memory per forward pass when only logits are needed, on a CPU: chunks this small keep
the element-wise passes over the pre-activations in cache, 3–6× faster than one pass over a large
test set (``benchmarks/``)."""


def evaluation_chunk(learner: Learner, X: Any, cfg: TrainConfig) -> int:
    """Examples per forward pass for evaluation (logits only): :func:`chunk_size`, and on a CPU
    at most what fits ``EVAL_SCRATCH_BYTES``. ``cfg.chunk_size`` > 0 is used as given."""
    chunk = chunk_size(learner, X, cfg)
    if cfg.chunk_size > 0 or learner.params.device.type != "cpu":
        return chunk
    return max(1, min(chunk, EVAL_SCRATCH_BYTES // max(1, learner.scratch_bytes_per_example(X))))


def loss_and_grad(
    learner: Learner,
    X: Any,
    objective: Objective,
    idx: Tensor | None,
    chunk: int,
    need_grad: bool = True,
    out: Tensor | None = None,
    grad_norms: Tensor | None = None,
    accuracy: bool = True,
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Mean report loss (G,), training accuracy (G,) and mean gradient over examples ``idx``
    (``None``: all examples, in order, taken as slices without copies). Without ``accuracy``,
    the accuracy is not taken (None).

    Works chunk by chunk: the scratch memory is that of ``chunk`` examples. ``out`` (the
    parameters' shape), when given, receives the gradient: a buffer reused from step to step
    instead of fresh memory each step (zeroed first for a mini-batch ``idx``, whose examples
    need not reach every column of the gradient). ``grad_norms`` (the
    parameters' shape without the last axis), when given, receives the norms of the gradient's
    rows of the last axis (the learner's backward pass takes them while the rows are in cache).
    """
    total_loss = None
    correct = None
    grad = None
    n = len(X) if idx is None else idx.numel()
    if out is not None and idx is not None and need_grad:
        out.zero_()
    for start in range(0, n, chunk):
        if idx is None:
            sub: Tensor | slice = slice(start, min(start + chunk, n))
            Xc = X[start : start + chunk] if (start > 0 or chunk < n) else X
        else:
            sub = idx[start : start + chunk]
            Xc = X[sub]
        logits, cache = learner.forward(Xc)
        leaf = logits.detach().requires_grad_(need_grad)
        with torch.set_grad_enabled(need_grad):
            run_logits = objective.combine(leaf)
            surrogate, report = objective(run_logits, sub)
        if need_grad:
            (dlogits,) = torch.autograd.grad(surrogate.sum(), leaf)
            first = grad is None
            last = start + chunk >= n  # the mean over the n examples: the last chunk divides
            grad = learner.backward(
                Xc,
                cache,
                dlogits,
                out if first else grad,
                accumulate=not first,
                mean_over=n if last else 1,
                grad_norms=grad_norms if last else None,
            )
        if accuracy:
            ok = margin_correct(run_logits.detach(), objective.y[sub]).sum(-1)
            correct = ok if correct is None else correct + ok
        total_loss = report.detach() if total_loss is None else total_loss + report.detach()
    assert total_loss is not None
    return total_loss / n, None if correct is None else correct.to(total_loss.dtype) / n, grad


def step_sizes(
    params: Tensor,
    grad: Tensor,
    n_runs: int,
    cfg: TrainConfig,
    param_norms: Tensor | None = None,
    grad_norms: Tensor | None = None,
) -> Tensor:
    """(G,) step size of each run under ``cfg.step`` (see the module docstring). For the
    relative rule, ``param_norms`` and ``grad_norms`` (``params.shape[:-1]``): the norms of the
    rows of the last axis of the parameters (:func:`descend`) and of the gradient
    (:func:`loss_and_grad`), when already taken."""
    cap = torch.full((n_runs,), cfg.lr, dtype=params.dtype, device=params.device)
    if cfg.step == "constant":
        return cap
    if cfg.step == "normalized":
        gnorm = grad.reshape(n_runs, -1).norm(dim=1)
        return torch.minimum(cap, cfg.delta / gnorm.clamp_min(1e-30))
    # "relative": no neuron (row of the last axis) changes by more than δ of its own norm.
    norms = params.norm(dim=-1) if param_norms is None else param_norms
    ratio = norms / (grad.norm(dim=-1) if grad_norms is None else grad_norms).clamp_min(1e-30)
    return torch.minimum(cap, cfg.delta * ratio.reshape(n_runs, -1).min(dim=1).values)


UPDATE_BLOCK_BYTES = 6 * 2**20
"""Parameters per block of :func:`descend` on a CPU: the rows of a block are still in cache when
their norms are taken."""

MIN_BLOCK_ROWS = 16
"""The fewest rows in a block of :func:`descend` (a reduction over few rows may be split another
way)."""


def descend(params: Tensor, grad: Tensor, eta: Tensor, keep_norms: bool = False) -> Tensor | None:
    """W ← W − η·g in place, with η (R,) one step size per replica (leading axis of ``params``).

    With ``keep_norms``, also returns the norms ‖w‖ (``params.shape[:-1]``) of the updated rows
    of the last axis, which the relative step rule reads next step: on a CPU taken block by block
    right after each block's update, while it is in cache (the numbers of ``params.norm(dim=-1)``
    after the whole update: rows are independent); otherwise None.
    """
    R = params.shape[0]
    if not keep_norms or params.device.type != "cpu" or params.dim() < 2 or not params.is_contiguous():
        params.addcmul_(grad, eta.view(R, *([1] * (params.dim() - 1))), value=-1.0)
        return params.norm(dim=-1) if keep_norms else None
    D = params.shape[-1]
    rows, grad_rows = params.view(-1, D), grad.reshape(-1, D)
    n_rows = rows.shape[0]
    eta_rows = eta.repeat_interleave(n_rows // R).view(-1, 1)
    norms = torch.empty(n_rows, dtype=params.dtype, device=params.device)
    block = equal_blocks(n_rows, UPDATE_BLOCK_BYTES // (D * params.element_size()), MIN_BLOCK_ROWS) or n_rows
    for start in range(0, n_rows, block):
        part = slice(start, start + block)
        rows[part].addcmul_(grad_rows[part], eta_rows[part], value=-1.0)
        torch.linalg.vector_norm(rows[part], dim=-1, out=norms[part])
    return norms.view(params.shape[:-1])


def train(
    learner: Learner,
    X: Any,
    objective: Objective,
    n_runs: int,
    cfg: TrainConfig,
    *,
    max_steps: int | None = None,
    loss_threshold: float | None = None,
    max_flow_time: float | None = None,
    probe: ProbeFn | None = None,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Train ``learner.params`` in place on inputs X (N, ...) for the objective's G = ``n_runs`` runs.

    Each run stops when its training loss falls below ``loss_threshold`` (default
    ``cfg.loss_threshold``), when its gradient-flow time t = Σ η reaches ``max_flow_time`` (its
    last step is shortened to land on it; ``None``: no limit), or after ``max_steps`` (default
    ``cfg.max_steps``); ``stopped_by`` says which, per run (``loss_threshold``, ``flow_time``,
    ``max_steps``). ``probe(params)``
    is recorded every ``cfg.log_every`` steps and at the end, with the loss and accuracy.
    """
    max_steps = cfg.max_steps if max_steps is None else max_steps
    threshold = cfg.loss_threshold if loss_threshold is None else loss_threshold
    params = learner.params
    R = params.shape[0]
    group = R // n_runs
    N = len(X)
    device = params.device
    chunk = chunk_size(learner, X, cfg)
    sgd = cfg.optimizer == "sgd"
    grad_buffer = None if sgd else torch.empty_like(params)
    relative = cfg.step == "relative"
    grad_norms = torch.empty(params.shape[:-1], dtype=params.dtype, device=device) if relative else None
    shuffle = generator(cfg.shuffle_seed, "sgd-order")
    order = torch.empty(0, dtype=torch.long, device="cpu")

    active = torch.ones(n_runs, dtype=torch.bool, device=device)
    steps = torch.zeros(n_runs, dtype=torch.long, device=device)
    flow_time = torch.zeros(n_runs, dtype=params.dtype, device=device)
    hist: dict[str, list[Any]] = {"step": [], "loss": [], "train_accuracy": [], "flow_time": []}
    t0 = time.perf_counter()

    def record(step: int, loss: Tensor, acc: Tensor) -> None:
        hist["step"].append(step)
        hist["loss"].append(loss.cpu())
        hist["train_accuracy"].append(acc.cpu())
        hist["flow_time"].append(flow_time.cpu().clone())
        if probe is not None:
            for key, value in probe(params).items():
                hist.setdefault(key, []).append(value.cpu())

    loss = acc = torch.zeros(n_runs)
    param_norms: Tensor | None = None
    step = 0
    for step in range(max_steps + 1):
        if sgd:
            if order.numel() < cfg.batch_size:
                order = torch.cat([order, torch.randperm(N, generator=shuffle, device="cpu")])
            batch_idx, order = order[: cfg.batch_size].to(device), order[cfg.batch_size :]
        logging = step % cfg.log_every == 0 or step == max_steps
        accuracy: Tensor | None = None
        if sgd:
            if logging:
                loss, accuracy, _ = loss_and_grad(learner, X, objective, None, chunk, need_grad=False)
            if step < max_steps:  # the last step only reports
                _, _, grad = loss_and_grad(
                    learner, X, objective, batch_idx, chunk, grad_norms=grad_norms, accuracy=False
                )
        else:  # the accuracy only where it is recorded: of the training set as this step sees it
            loss, accuracy, grad = loss_and_grad(
                learner,
                X,
                objective,
                None,
                chunk,
                need_grad=step < max_steps,
                out=grad_buffer,
                grad_norms=grad_norms,
                accuracy=logging,
            )
        if not sgd or logging:
            active &= ~(loss < threshold)
        if max_flow_time is not None:
            active &= flow_time < max_flow_time
        running = bool(active.any())
        if logging or not running:
            if accuracy is None and not sgd:  # every run stopped between records (same weights)
                _, accuracy, _ = loss_and_grad(learner, X, objective, None, chunk, need_grad=False)
            if accuracy is not None:
                acc = accuracy
            record(step, loss, acc)
        if progress is not None:
            progress(step, max_steps, int(active.sum()), float(loss.max()))
        if step == max_steps or not running:
            break
        assert grad is not None
        eta = step_sizes(params, grad, n_runs, cfg, param_norms, grad_norms) * active
        if max_flow_time is not None:
            eta = torch.minimum(eta, (max_flow_time - flow_time).clamp_min(0))
        param_norms = descend(params, grad, eta.repeat_interleave(group), keep_norms=relative)
        flow_time += eta
        steps += active.long()

    history = {
        key: torch.stack(values) if isinstance(values[0], Tensor) else torch.tensor(values, device="cpu")
        for key, values in hist.items()
    }
    reached = (loss < threshold).cpu()
    timed = flow_time.cpu() >= max_flow_time if max_flow_time is not None else torch.zeros_like(reached)
    stopped_by = [
        "loss_threshold" if r else ("flow_time" if t else "max_steps")
        for r, t in zip(reached.tolist(), timed.tolist(), strict=True)
    ]
    return TrainResult(
        steps=steps.cpu(),
        converged=reached,
        final_loss=loss.cpu(),
        final_train_accuracy=acc.cpu(),
        flow_time=flow_time.cpu(),
        seconds=time.perf_counter() - t0,
        history=history,
        stopped_by=stopped_by,
    )
