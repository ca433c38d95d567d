"""A run of the simulator's protocol as its stages see it, and the helpers the stages share.

:class:`Run` is the context every stage function receives (:mod:`multiview.methods`,
:mod:`multiview.fixed_features`): the config, device and dtype, the distribution with its training
and test batches and their learner inputs (built once), the progress reporter, the trainer, and
the tensors of the stages already finished. :meth:`Run.create` samples the data; a script can
build one, put a cached stage's tensors in ``tensors`` (:func:`multiview.protocol.load_stage`),
pass its own ``trainer`` and run a single stage (:func:`multiview.protocol.run_stage`).

The helpers take what they read: a fresh CNN of the run's shape (:func:`new_cnn`), one training
with progress (:func:`fit`), the learned views of some weights (:func:`learned`), test errors
(:func:`evaluate`), a KD student's objective and stopping rule, and the JSON pieces every stage
reports. Shapes: weights W (R, k, m, D); logits (R, n, k); learned (R, k, 2) bool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from multiview import precision
from multiview.config import ProtocolConfig, SimConfig, TrainConfig
from multiview.data import Batch, MultiViewDistribution
from multiview.evaluate import batched_logits, error_rates
from multiview.inputs import Inputs
from multiview.losses import PracticalKDObjective, TheoryKDObjective
from multiview.model import TwoLayerCNN, init_weights
from multiview.probes import lam, learned_views, phi, view_correlations
from multiview.progress import Reporter
from multiview.seeding import derive_seed
from multiview.train import TrainResult, evaluation_chunk, train

Trainer = Callable[..., TrainResult]
"""A function with the signature of :func:`multiview.train.train`."""


@dataclass
class Run:
    """What the stages of one protocol run share. ``tensors``: stage name → the tensors it
    produced (``single``: weights, test and train logits, learned views, Λ(0); ...)."""

    cfg: SimConfig
    device: torch.device
    dtype: torch.dtype
    dist: MultiViewDistribution
    train: Batch
    test: Batch
    train_inputs: Inputs
    test_inputs: Inputs
    reporter: Reporter = field(default_factory=Reporter)
    trainer: Trainer = train
    tensors: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        cfg: SimConfig,
        device: str | torch.device = "cpu",
        reporter: Reporter | None = None,
        trainer: Trainer = train,
    ) -> Run:
        """Sample the run's training and test sets (and set the precision knobs of ``cfg.train``)."""
        device = torch.device(device)
        dtype = torch.float64 if cfg.train.dtype == "float64" else torch.float32
        precision.configure(cfg.train, device)
        dist = MultiViewDistribution(cfg.data, cfg.seed)
        train_batch = dist.sample(cfg.data.n_train, "train", device, dtype)
        test_batch = dist.sample(cfg.data.n_test, "test", device, dtype)
        return cls(
            cfg,
            device,
            dtype,
            dist,
            train_batch,
            test_batch,
            train_inputs=dist.inputs(train_batch, seen=True),
            test_inputs=dist.inputs(test_batch, seen=False, fresh_key=derive_seed(cfg.seed, "test-noise")),
            reporter=reporter or Reporter(),
            trainer=trainer,
        )


# --------------------------------------------------------------------------------------------
# Models, training, evaluation
# --------------------------------------------------------------------------------------------


def new_cnn(run: Run, stream: str, count: int, sigma: float | None = None) -> TwoLayerCNN:
    """``count`` fresh CNNs of the run's shape, initialized from the random stream ``stream``
    (replica i from its own seed), with init std ``sigma`` (default σ_0)."""
    c, m = run.cfg, run.cfg.model
    sigma = m.sigma_0 if sigma is None else sigma
    D = run.dist.weight_dim(c.data.n_train)
    W = init_weights(c.seed, stream, list(range(count)), c.data.k, m.m, D, sigma, run.device, run.dtype)
    return TwoLayerCNN(W, m.q, m.varrho, sigma, derive_seed(c.seed, stream))


def fit(
    run: Run,
    name: str,
    learner: Any,
    inputs: Any,
    objective: Any,
    n_runs: int,
    steps: int,
    threshold: float | None = None,
    probe: Any = None,
    tcfg: TrainConfig | None = None,
    max_flow_time: float | None = None,
) -> TrainResult:
    """Train ``learner`` with the run's trainer (``tcfg``: the run's ``[train]`` unless given),
    reporting progress as ``name``."""
    tcfg = run.cfg.train if tcfg is None else tcfg
    run.reporter.stage_started(name, steps)

    def progress(step: int, total: int, active: int, loss: float) -> None:
        run.reporter.step(name, step, total, active, loss)

    return run.trainer(
        learner,
        inputs,
        objective,
        n_runs,
        tcfg,
        max_steps=steps,
        loss_threshold=threshold,
        max_flow_time=max_flow_time,
        probe=probe,
        progress=progress,
    )


def learned(weights: Tensor, dist: MultiViewDistribution, cfg: SimConfig) -> tuple[Tensor, Tensor, Tensor]:
    """(Λ, Φ, learned), each (R, k, 2), for weights (R, k, m, D): view (i, ℓ) is learned when
    Λ_{i,ℓ} ≥ ``probes.learned_threshold``·ϱ."""
    corr = view_correlations(weights, dist)
    L = lam(corr)
    return L, phi(corr), learned_views(L, cfg.model.varrho, cfg.probes.learned_threshold)


def logits_on(learner: Any, inputs: Any, tcfg: TrainConfig) -> Tensor:
    """(R, n, k) logits of ``learner`` on ``inputs``, in evaluation-sized chunks."""
    return batched_logits(learner, inputs, evaluation_chunk(learner, inputs, tcfg))


def evaluate(run: Run, learner: Any) -> tuple[Tensor, dict[str, Tensor]]:
    """The learner's test logits (R, n, k) and its error rates on the run's test set."""
    logits = logits_on(learner, run.test_inputs, run.cfg.train)
    return logits, error_rates(logits, run.test)


# --------------------------------------------------------------------------------------------
# Distilled students
# --------------------------------------------------------------------------------------------


def kd_objective(p: ProtocolConfig, k: int, y: Tensor, teacher: Tensor) -> Any:
    """A student's objective against teacher logits (G or 1, N, k): Theorem 3's update
    (``kd_objective = "theory"``) or the practical t·CE + (1 − t)·T²·H."""
    if p.kd_objective == "theory":
        return TheoryKDObjective(y, teacher, p.tau(k), p.kd_eta_ratio)
    return PracticalKDObjective(y, teacher, p.kd_t, p.kd_temperature)


def student_train_config(cfg: SimConfig) -> TrainConfig:
    """How a distilled student takes its steps: the models' ``[train]`` with the student's own step
    rule (``protocol.kd_step``), δ (``protocol.kd_delta``) and logging cadence
    (``protocol.kd_log_every``)."""
    p, t = cfg.protocol, cfg.train
    return replace(
        t,
        step=t.step if p.kd_step == "train" else p.kd_step,
        delta=p.kd_delta or t.delta,
        log_every=p.kd_log_every,
    )


def kd_threshold(cfg: SimConfig) -> float:
    """Theory KD students stop like single models (their reported loss also measures how far they
    still fall below the teacher); practical-KD students train for their whole budget."""
    return cfg.train.loss_threshold if cfg.protocol.kd_objective == "theory" else 0.0


# --------------------------------------------------------------------------------------------
# JSON pieces
# --------------------------------------------------------------------------------------------


def errors_json(errs: dict[str, Tensor]) -> dict[str, list[float]]:
    """Per-model test errors: ``all``, ``multi_view``, ``single_view``."""
    return {k: [float(v) for v in errs[k]] for k in ("all", "multi_view", "single_view")}


def training_json(res: TrainResult, max_steps: int, loss_threshold: float) -> dict[str, Any]:
    """Per-run training outcome: accuracy, loss, steps, convergence, gradient-flow time, why each
    run stopped (``stopped_by``: ``loss_threshold``, ``flow_time`` or ``max_steps``), the budget
    and threshold it had, and ``not_converged``: how many runs used their whole step budget with
    the loss still above a positive threshold (a run with threshold 0 trains for its budget by
    design, and one stopped at its flow-time horizon stopped as planned)."""
    stuck = [
        by == "max_steps" and loss_threshold > 0 and not conv
        for by, conv in zip(res.stopped_by, res.converged.tolist(), strict=True)
    ]
    return {
        "train_accuracy": res.final_train_accuracy.tolist(),
        "final_loss": res.final_loss.tolist(),
        "steps": res.steps.tolist(),
        "converged": res.converged.tolist(),
        "flow_time": res.flow_time.tolist(),
        "stopped_by": res.stopped_by,
        "max_steps": max_steps,
        "loss_threshold": loss_threshold,
        "not_converged": sum(stuck),
        "train_seconds": res.seconds,
    }


def view_summary(learned: Tensor) -> dict[str, Any]:
    """Counts over (model, class) pairs of how many views were learned; ``learned`` (R, k, 2)."""
    n = learned.sum(-1)
    return {
        "learned": learned.tolist(),
        "exactly_one_fraction": float((n == 1).float().mean()),
        "both_fraction": float((n == 2).float().mean()),
        "none_fraction": float((n == 0).float().mean()),
    }
