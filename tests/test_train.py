"""The trainer: S batched seeds are S independent runs; step rules; stopping."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from multiview.config import DataConfig, TrainConfig
from multiview.data import MultiViewDistribution
from multiview.inputs import DenseInputs
from multiview.losses import LabelObjective, cross_entropy, margin_correct
from multiview.model import TwoLayerCNN, init_weights, smoothed_relu
from multiview.seeding import generator
from multiview.train import EVAL_SCRATCH_BYTES, chunk_size, evaluation_chunk, loss_and_grad, step_sizes, train

# Explicit values for the fields whose defaults are tuned for the presets.
BASE = {"s": 1.0, "C_p": 1, "noise_model": "gaussian"}


def _dc(**kwargs) -> DataConfig:
    return DataConfig(**{**BASE, **kwargs})


def _setup(noise_model: str, n: int = 40):
    cfg = _dc(k=3, d=30, P=8, s=1.0, sigma_p=0.05, n_train=n, noise_model=noise_model)
    dist = MultiViewDistribution(cfg, 0)
    batch = dist.sample(n, "train", dtype=torch.float64)
    return dist, batch, dist.inputs(batch, seen=True), dist.weight_dim(n)


@pytest.mark.parametrize("noise_model", ["gaussian", "orthogonal"])
@pytest.mark.parametrize("step", ["constant", "normalized", "relative"])
def test_batched_seeds_equal_separate_runs(noise_model, step):
    dist, batch, inputs, D = _setup(noise_model)
    tcfg = TrainConfig(
        step=step,
        lr=2.0 if step == "constant" else 50.0,
        delta=0.05,
        max_steps=60,
        loss_threshold=0.3,
        log_every=10,
        dtype="float64",
    )
    seeds = [0, 1, 2]
    W = init_weights(5, "model", seeds, 3, 2, D, 0.05, dtype=torch.float64)
    net = TwoLayerCNN(W, 3, 0.1, 0.05)
    batched = train(net, inputs, LabelObjective(batch.y), 3, tcfg)
    for i in seeds:
        Wi = init_weights(5, "model", [i], 3, 2, D, 0.05, dtype=torch.float64)
        single = TwoLayerCNN(Wi, 3, 0.1, 0.05)
        res = train(single, inputs, LabelObjective(batch.y), 1, tcfg)
        assert torch.allclose(single.weights[0], net.weights[i], rtol=1e-9, atol=1e-12)
        assert res.steps[0] == batched.steps[i]
        assert torch.allclose(res.final_loss[0], batched.final_loss[i], rtol=1e-9)


def test_runs_stop_at_the_loss_threshold():
    dist, batch, inputs, D = _setup("orthogonal")
    tcfg = TrainConfig(
        step="normalized", lr=100.0, delta=0.1, max_steps=2000, loss_threshold=0.05, dtype="float64"
    )
    net = TwoLayerCNN(init_weights(1, "model", [0, 1], 3, 2, D, 0.05, dtype=torch.float64), 3, 0.1, 0.05)
    res = train(net, inputs, LabelObjective(batch.y), 2, tcfg)
    assert torch.all(res.converged)
    assert torch.all(res.final_loss < 0.05)
    assert torch.all(res.steps < 2000)
    assert res.history["loss"][0].min() > 0.5  # started far from the threshold


def test_training_the_average_groups_replicas():
    dist, batch, inputs, D = _setup("orthogonal")
    tcfg = TrainConfig(step="constant", lr=5.0, max_steps=30, loss_threshold=0.0, dtype="float64")
    W = init_weights(1, "model", [0, 1, 2, 3], 3, 2, D, 0.05, dtype=torch.float64)
    net = TwoLayerCNN(W.clone(), 3, 0.1, 0.05)
    obj = LabelObjective(batch.y, group_size=2)
    res = train(net, inputs, obj, 2, tcfg)
    assert res.final_loss.shape == (2,)
    # Group 0 is unaffected by group 1's weights.
    net2 = TwoLayerCNN(W[:2].clone(), 3, 0.1, 0.05)
    train(net2, inputs, LabelObjective(batch.y, group_size=2), 1, tcfg)
    assert torch.allclose(net2.weights, net.weights[:2], atol=1e-12)


def test_sgd_reduces_the_loss():
    dist, batch, inputs, D = _setup("gaussian", n=60)
    tcfg = TrainConfig(
        optimizer="sgd",
        batch_size=16,
        step="constant",
        lr=1.0,
        max_steps=200,
        loss_threshold=0.0,
        log_every=50,
        dtype="float64",
    )
    net = TwoLayerCNN(init_weights(1, "model", [0], 3, 2, D, 0.1, dtype=torch.float64), 3, 0.1, 0.1)
    res = train(net, inputs, LabelObjective(batch.y), 1, tcfg)
    assert res.history["loss"][-1, 0] < res.history["loss"][0, 0] - 0.1


def test_chunking_does_not_change_the_result():
    dist, batch, inputs, D = _setup("orthogonal")
    out = []
    for chunk in (0, 7):
        tcfg = TrainConfig(
            step="normalized", lr=50.0, delta=0.05, max_steps=20, chunk_size=chunk, dtype="float64"
        )
        net = TwoLayerCNN(init_weights(1, "model", [0, 1], 3, 2, D, 0.05, dtype=torch.float64), 3, 0.1, 0.05)
        train(net, inputs, LabelObjective(batch.y), 2, tcfg)
        out.append(net.weights)
    assert torch.allclose(out[0], out[1], atol=1e-11)


def test_evaluation_chunk_is_cache_sized_on_cpu_and_gives_the_same_logits():
    from multiview.evaluate import batched_logits
    from multiview.train import EVAL_SCRATCH_BYTES, chunk_size, evaluation_chunk

    dist, batch, inputs, D = _setup("orthogonal", n=400)
    net = TwoLayerCNN(init_weights(1, "model", list(range(64)), 3, 8, D, 0.05, dtype=torch.float64), 3, 0.1)
    tcfg = TrainConfig(dtype="float64")
    per_example = net.scratch_bytes_per_example(inputs)
    chunk = evaluation_chunk(net, inputs, tcfg)
    assert chunk == EVAL_SCRATCH_BYTES // per_example < chunk_size(net, inputs, tcfg) == 400
    assert evaluation_chunk(net, inputs, TrainConfig(dtype="float64", chunk_size=7)) == 7
    whole = batched_logits(net, inputs, 400)
    assert torch.allclose(batched_logits(net, inputs, chunk), whole, rtol=1e-12, atol=1e-14)


def test_runs_stop_at_the_flow_time_horizon():
    """Each run stops when its gradient-flow time reaches the horizon, its last step shortened to
    land on it; a run that reaches the loss threshold first says so."""
    dist, batch, inputs, D = _setup("orthogonal")
    tcfg = TrainConfig(
        step="normalized", lr=100.0, delta=0.1, max_steps=500, loss_threshold=0.0, dtype="float64"
    )
    net = TwoLayerCNN(init_weights(1, "model", [0, 1], 3, 2, D, 0.05, dtype=torch.float64), 3, 0.1, 0.05)
    res = train(net, inputs, LabelObjective(batch.y), 2, tcfg, max_flow_time=7.5)
    assert torch.allclose(res.flow_time, torch.full((2,), 7.5, dtype=torch.float64))
    assert res.stopped_by == ["flow_time", "flow_time"]
    assert torch.all(res.steps < 500)
    unlimited = train(
        TwoLayerCNN(init_weights(1, "model", [0, 1], 3, 2, D, 0.05, dtype=torch.float64), 3, 0.1, 0.05),
        inputs,
        LabelObjective(batch.y),
        2,
        TrainConfig(
            step="normalized", lr=100.0, delta=0.1, max_steps=20, loss_threshold=0.0, dtype="float64"
        ),
    )
    assert unlimited.stopped_by == ["max_steps", "max_steps"]
    reached = train(
        TwoLayerCNN(init_weights(1, "model", [0], 3, 2, D, 0.05, dtype=torch.float64), 3, 0.1, 0.05),
        inputs,
        LabelObjective(batch.y),
        1,
        TrainConfig(
            step="normalized", lr=100.0, delta=0.1, max_steps=2000, loss_threshold=0.05, dtype="float64"
        ),
        max_flow_time=1e9,
    )
    assert reached.stopped_by == ["loss_threshold"]


# --- the step rules on hand-made gradients --------------------------------------------------------


def _rows(*rows: list[float]) -> torch.Tensor:
    """Four replicas (two runs of two) of one class with one neuron each: (4, 1, 1, 2)."""
    return torch.tensor(rows, dtype=torch.float64).view(4, 1, 1, 2)


PARAMS = _rows([1.0, 0.0], [0.0, 2.0], [1.0, 0.0], [0.0, 1.0])
GRAD = _rows([3.0, 0.0], [0.0, 4.0], [0.0, 0.5], [0.25, 0.0])  # run norms 5 and √0.3125


def test_constant_step_is_the_learning_rate():
    eta = step_sizes(PARAMS, GRAD, 2, TrainConfig(step="constant", lr=0.1, delta=0.5))
    assert eta.dtype == torch.float64 and eta.tolist() == [0.1, 0.1]
    # a rate larger than the relative (δ·‖w‖/‖g‖ = 1/6 for run 0) and normalized rules allow
    large = step_sizes(PARAMS, GRAD, 2, TrainConfig(step="constant", lr=1.0, delta=0.5))
    assert large.tolist() == [1.0, 1.0]


def test_normalized_step_moves_each_run_by_delta_at_most_the_learning_rate():
    cfg = TrainConfig(step="normalized", lr=0.7, delta=0.5)
    eta = step_sizes(PARAMS, GRAD, 2, cfg)
    assert eta.tolist() == pytest.approx([0.5 / 5.0, 0.7])  # δ/‖g‖ = 0.1; δ/‖g‖ ≈ 0.89 > lr: lr
    small = step_sizes(PARAMS, GRAD, 2, TrainConfig(step="normalized", lr=0.5, delta=0.2))
    assert small.tolist() == pytest.approx([0.2 / 5.0, 0.2 / 0.3125**0.5])
    zero = step_sizes(PARAMS, torch.zeros_like(GRAD), 2, cfg)  # no gradient: the cap
    assert zero.tolist() == [0.7, 0.7]


def test_relative_step_moves_no_neuron_by_more_than_delta_of_its_norm():
    # run 0: ‖w‖/‖g‖ per neuron = 1/3, 2/4 → δ/3; run 1: 1/0.5, 1/0.25 → 2δ
    eta = step_sizes(PARAMS, GRAD, 2, TrainConfig(step="relative", lr=0.8, delta=0.3))
    assert eta.tolist() == pytest.approx([0.3 / 3, 0.6])
    capped = step_sizes(PARAMS, GRAD, 2, TrainConfig(step="relative", lr=0.5, delta=0.3))
    assert capped.tolist() == pytest.approx([0.1, 0.5])
    # a neuron without gradient does not limit the step
    grad = GRAD.clone()
    grad[0] = 0.0
    assert step_sizes(PARAMS, grad, 2, TrainConfig(step="relative", lr=10.0, delta=0.3)).tolist() == (
        pytest.approx([0.3 * 2 / 4, 0.6])
    )


@pytest.mark.parametrize("step", ["constant", "normalized", "relative"])
def test_one_step_moves_each_run_by_its_step_along_its_gradient(step):
    dist, batch, inputs, D = _setup("gaussian", n=12)
    tcfg = TrainConfig(step=step, lr=3.0, delta=0.05, max_steps=1, loss_threshold=0.0, dtype="float64")
    W = init_weights(2, "model", [0, 1, 2, 3], 3, 2, D, 0.05, dtype=torch.float64)
    objective = LabelObjective(batch.y, group_size=2)
    _, _, grad = loss_and_grad(TwoLayerCNN(W.clone(), 3, 0.1), inputs, objective, None, 12)
    eta = step_sizes(W, grad, 2, tcfg)
    net = TwoLayerCNN(W.clone(), 3, 0.1)
    res = train(net, inputs, objective, 2, tcfg)
    expected = W - eta.repeat_interleave(2)[:, None, None, None] * grad
    assert torch.allclose(net.weights, expected, rtol=1e-12, atol=1e-15)
    assert torch.allclose(res.flow_time, eta, rtol=1e-12)
    assert res.steps.tolist() == [1, 1] and res.steps.dtype == torch.long
    assert res.stopped_by == ["max_steps", "max_steps"] and 0.0 <= res.seconds < 60


# --- loss, accuracy and gradient, chunk by chunk ---------------------------------------------------


def test_loss_accuracy_and_gradient_are_means_over_the_examples():
    dist, batch, inputs, D = _setup("gaussian", n=10)
    W = init_weights(2, "model", [0, 1], 3, 2, D, 0.3, dtype=torch.float64)
    Wr = W.clone().requires_grad_(True)
    pre = torch.einsum("npd,rkmd->rnpkm", batch.X, Wr)
    logits = smoothed_relu(pre, 3, 0.1).sum(dim=(2, 4))  # (R, n, k)
    for idx in (None, torch.tensor([7, 2, 5, 0])):
        sel = torch.arange(10) if idx is None else idx
        ce = cross_entropy(logits[:, sel], batch.y[sel]) / len(sel)
        (ref_grad,) = torch.autograd.grad(ce.sum(), Wr, retain_graph=True)
        acc = margin_correct(logits[:, sel].detach(), batch.y[sel]).double().mean(-1)
        for chunk in (3, 10):
            loss, accuracy, grad = loss_and_grad(
                TwoLayerCNN(W.clone(), 3, 0.1), inputs, LabelObjective(batch.y), idx, chunk
            )
            assert torch.allclose(loss, ce.detach(), rtol=1e-12)
            assert accuracy.dtype == torch.float64 and torch.equal(accuracy, acc)
            assert torch.allclose(grad, ref_grad, rtol=1e-10, atol=1e-14)
    _, _, none = loss_and_grad(
        TwoLayerCNN(W.clone(), 3, 0.1), inputs, LabelObjective(batch.y), None, 4, False
    )
    assert none is None
    for idx in (None, torch.tensor([7, 2, 5, 0])):  # without the accuracy: the same loss and gradient
        loss, accuracy, grad = loss_and_grad(
            TwoLayerCNN(W.clone(), 3, 0.1), inputs, LabelObjective(batch.y), idx, 3
        )
        loss_n, none, grad_n = loss_and_grad(
            TwoLayerCNN(W.clone(), 3, 0.1), inputs, LabelObjective(batch.y), idx, 3, accuracy=False
        )
        assert none is None and torch.equal(loss_n, loss) and torch.equal(grad_n, grad)


@pytest.mark.parametrize("batch_idx", [None, [7, 2, 5, 2]])
def test_the_gradient_is_written_into_the_buffer_given(batch_idx):
    """``out`` given: the mean gradient is written there, chunk after chunk, and returned; the same
    numbers as without it. A full pass overwrites whatever the buffer held; a mini-batch (examples
    out of order, one drawn twice) has it zeroed first, so the columns of the noise of examples
    outside the batch hold 0, not what the buffer held."""
    dist, batch, inputs, D = _setup("orthogonal", n=10)
    idx = None if batch_idx is None else torch.tensor(batch_idx)
    for chunk in (10, 3) if idx is None else (4, 3):
        objective = LabelObjective(batch.y)
        loss, acc, grad = loss_and_grad(_net(D), inputs, objective, idx, chunk)
        out = torch.full_like(grad, 7.0)
        loss_o, acc_o, grad_o = loss_and_grad(_net(D), inputs, objective, idx, chunk, out=out)
        assert grad_o.data_ptr() == out.data_ptr()
        assert torch.equal(out, grad) and torch.equal(loss_o, loss) and torch.equal(acc_o, acc)
        if idx is not None:
            assert bool((grad[..., 2 * 3 :] == 0).any())  # columns no patch of the batch reaches


class _Backwards:
    """A learner that records, for each backward pass, the buffer it was handed and ``accumulate``."""

    def __init__(self, learner) -> None:
        self.learner = learner
        self.calls: list[tuple[torch.Tensor | None, bool]] = []
        self.means: list[tuple[int, torch.Tensor | None]] = []

    @property
    def params(self) -> torch.Tensor:
        return self.learner.params

    def forward(self, X):
        return self.learner.forward(X)

    def backward(self, X, cache, dlogits, grad=None, accumulate=False, mean_over=1, grad_norms=None):
        self.calls.append((grad, accumulate))
        self.means.append((mean_over, grad_norms))
        return self.learner.backward(X, cache, dlogits, grad, accumulate, mean_over, grad_norms)

    def scratch_bytes_per_example(self, X) -> int:
        return self.learner.scratch_bytes_per_example(X)


def test_gradient_descent_takes_one_gradient_a_step_into_one_buffer():
    """Full-batch steps: one gradient per step taken (none at the last, where the loop stops),
    chunk by chunk into one buffer of the parameters' shape kept for the whole run; SGD's batch
    gradients are fresh."""
    dist, batch, inputs, D = _setup("orthogonal", n=10)
    tcfg = TrainConfig(
        step="constant", lr=0.5, max_steps=3, loss_threshold=0.0, chunk_size=4, dtype="float64"
    )
    learner = _Backwards(_net(D))
    res = train(learner, inputs, LabelObjective(batch.y), 2, tcfg)
    assert res.steps.tolist() == [3, 3]
    assert [accumulate for _, accumulate in learner.calls] == [False, True, True] * 3
    buffer = learner.calls[0][0]
    assert buffer is not None and buffer.shape == learner.params.shape
    assert all(grad is buffer for grad, _ in learner.calls[0::3])
    assert all(grad.data_ptr() == buffer.data_ptr() for grad, _ in learner.calls)
    # the last chunk divides the sum by the number of examples; no norms for the constant rule
    assert [mean for mean, _ in learner.means] == [1, 1, 10] * 3
    assert all(norms is None for _, norms in learner.means)
    sgd = TrainConfig(optimizer="sgd", batch_size=4, lr=0.5, max_steps=2, loss_threshold=0.0, dtype="float64")
    learner = _Backwards(_net(D))
    train(learner, inputs, LabelObjective(batch.y), 2, sgd)
    assert learner.calls and all(grad is None for grad, _ in learner.calls)
    assert [mean for mean, _ in learner.means] == [4, 4]  # a batch gradient a step, none at the last


def test_the_relative_rule_takes_the_gradient_norms_from_the_last_chunk():
    """Under the relative rule the gradient's row norms come with the last chunk's backward pass
    (the same buffer each step), and they are the norms of the whole mean gradient."""
    dist, batch, inputs, D = _setup("orthogonal", n=10)
    tcfg = TrainConfig(
        step="relative", lr=1e9, delta=0.05, max_steps=2, loss_threshold=0.0, chunk_size=4, dtype="float64"
    )
    learner = _Backwards(_net(D))
    train(learner, inputs, LabelObjective(batch.y), 2, tcfg)
    norms = [n for _, n in learner.means]
    assert norms[0::3] == [None, None] and norms[1::3] == [None, None]
    assert norms[2] is not None and norms[5] is norms[2] and norms[2].shape == learner.params.shape[:-1]
    objective = LabelObjective(batch.y)
    out = torch.empty(learner.params.shape[:-1], dtype=torch.float64)
    for chunk in (4, 10):
        _, _, grad = loss_and_grad(_net(D), inputs, objective, None, chunk, grad_norms=out)
        assert torch.equal(out, grad.norm(dim=-1))


def test_descend_updates_in_place_and_keeps_the_norms_of_the_updated_rows(monkeypatch):
    """W ← W − η·g with one η per replica, in blocks of rows on a CPU: the numbers of one update
    over all rows, and with ``keep_norms`` the rows' norms after it, those of ``norm(dim=-1)``;
    a last block below MIN_BLOCK_ROWS rows makes one block."""
    from multiview import train as train_module
    from multiview.train import descend

    g = torch.Generator().manual_seed(0)
    params = torch.randn(3, 5, 16, 40, generator=g)  # 240 rows of 40
    grad = torch.randn(params.shape, generator=g)
    eta = torch.tensor([0.1, 0.0, 2.5])
    expected = params.clone().addcmul_(grad, eta.view(3, 1, 1, 1), value=-1.0)
    for rows in (240, 16, 17, 100, 1):
        monkeypatch.setattr(train_module, "UPDATE_BLOCK_BYTES", rows * 40 * 4)
        updated = params.clone()
        norms = descend(updated, grad, eta, keep_norms=True)
        assert torch.equal(updated, expected) and torch.equal(norms, expected.norm(dim=-1))
        again = params.clone()
        assert descend(again, grad, eta) is None and torch.equal(again, expected)
    assert train_module.MIN_BLOCK_ROWS == 16


def test_step_sizes_from_norms_already_taken_are_those_from_the_tensors():
    g = torch.Generator().manual_seed(1)
    params = torch.randn(2, 3, 4, 10, generator=g)
    grad = torch.randn(params.shape, generator=g)
    cfg = TrainConfig(step="relative", lr=1e9, delta=0.05)
    plain = step_sizes(params, grad, 2, cfg)
    given = step_sizes(params, grad, 2, cfg, params.norm(dim=-1), grad.norm(dim=-1))
    assert torch.equal(plain, given)
    halved = step_sizes(params, grad, 2, cfg, params.norm(dim=-1) / 2, grad.norm(dim=-1))
    assert torch.allclose(halved, plain / 2)
    doubled = step_sizes(params, grad, 2, cfg, params.norm(dim=-1), grad.norm(dim=-1) / 2)
    assert torch.allclose(doubled, plain * 2)


# --- when runs stop and what is recorded ----------------------------------------------------------


def _net(D: int, seeds=(0, 1)) -> TwoLayerCNN:
    return TwoLayerCNN(
        init_weights(1, "model", list(seeds), 3, 2, D, 0.05, dtype=torch.float64), 3, 0.1, 0.05
    )


def test_history_every_log_every_steps_and_at_the_end():
    dist, batch, inputs, D = _setup("orthogonal", n=12)
    tcfg = TrainConfig(
        step="constant", lr=1.0, max_steps=50, loss_threshold=0.0, log_every=3, dtype="float64"
    )
    calls = []
    res = train(
        _net(D), inputs, LabelObjective(batch.y), 2, tcfg, max_steps=7, progress=lambda *a: calls.append(a)
    )
    assert res.history["step"].tolist() == [0, 3, 6, 7]
    assert res.steps.tolist() == [7, 7]  # the argument overrides cfg.max_steps
    assert [c[:3] for c in calls] == [(s, 7, 2) for s in range(8)]
    assert calls[0][3] == pytest.approx(float(res.history["loss"][0].max()))
    # a run that stops between two records is recorded when it stops: just above its loss at
    # step 7, it stops there
    one = train(_net(D, [0]), inputs, LabelObjective(batch.y), 1, tcfg, max_steps=7)
    stop = float(np.nextafter(float(one.final_loss[0]), np.inf))
    early = train(_net(D, [0]), inputs, LabelObjective(batch.y), 1, tcfg, loss_threshold=stop)
    assert early.steps.tolist() == [7] and early.history["step"].tolist() == [0, 3, 6, 7]
    # its accuracy is that of its final weights, as when step 7 is a record anyway
    assert torch.equal(early.final_train_accuracy, one.final_train_accuracy)
    assert torch.equal(early.history["train_accuracy"], one.history["train_accuracy"])
    net = _net(D, [0])
    train(net, inputs, LabelObjective(batch.y), 1, tcfg, loss_threshold=stop)
    logits = net.logits(inputs)
    assert torch.equal(early.final_train_accuracy, margin_correct(logits, batch.y).double().mean(-1))


class _Counted(TwoLayerCNN):
    """A CNN that counts its forward and backward passes."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls = {"forward": 0, "backward": 0}

    def forward(self, inputs):
        self.calls["forward"] += 1
        return super().forward(inputs)

    def backward(self, *args, **kwargs):
        self.calls["backward"] += 1
        return super().backward(*args, **kwargs)


@pytest.mark.parametrize("optimizer", ["gd", "sgd"])
def test_the_accuracy_is_taken_only_where_it_is_recorded(monkeypatch, optimizer):
    """The accuracy costs a few small operations a step: taken at the records (every
    ``log_every`` steps and the last) only, never on the steps between, and without another
    pass over the data (gradient descent: one forward pass a step, one backward pass a step that
    moves the weights). A gradient-descent run that stops between two records has the accuracy
    of its final weights taken once more, without a gradient."""
    import multiview.train as trainer

    dist, batch, inputs, D = _setup("orthogonal", n=12)
    taken = []
    monkeypatch.setattr(trainer, "margin_correct", lambda *a: taken.append(1) or margin_correct(*a))
    tcfg = TrainConfig(
        optimizer=optimizer,
        batch_size=4 if optimizer == "sgd" else 0,
        step="constant",
        lr=1.0,
        max_steps=50,
        loss_threshold=0.0,
        log_every=3,
        dtype="float64",
    )
    net = _Counted(_net(D).weights, 3, 0.1, 0.05)
    res = train(net, inputs, LabelObjective(batch.y), 2, tcfg, max_steps=7)
    assert len(taken) == 4 and res.history["step"].tolist() == [0, 3, 6, 7]
    forwards = 8 if optimizer == "gd" else 4 + 7  # SGD: the records over the data, a batch a step
    assert net.calls == {"forward": forwards, "backward": 7}
    if optimizer == "sgd":
        return
    one = train(_net(D, [0]), inputs, LabelObjective(batch.y), 1, tcfg, max_steps=7)
    stop = float(np.nextafter(float(one.final_loss[0]), np.inf))
    taken.clear()
    net = _Counted(_net(D, [0]).weights, 3, 0.1, 0.05)
    early = train(net, inputs, LabelObjective(batch.y), 1, tcfg, loss_threshold=stop)
    assert early.steps.tolist() == [7] and len(taken) == 4  # steps 0, 3, 6 and the stop at 7
    assert net.calls == {"forward": 9, "backward": 8}  # the stop step's pass took its gradient


def test_a_run_stops_at_the_first_step_below_the_threshold_whatever_the_logging():
    dist, batch, inputs, D = _setup("orthogonal", n=12)
    steps = []
    for log_every in (1, 1000):
        tcfg = TrainConfig(
            step="constant", lr=1.0, max_steps=500, loss_threshold=1.0, log_every=log_every, dtype="float64"
        )
        steps.append(train(_net(D), inputs, LabelObjective(batch.y), 2, tcfg).steps.tolist())
    assert steps[0] == steps[1] and 0 < min(steps[0]) < 500


def test_the_threshold_is_strict():
    dist, batch, inputs, D = _setup("orthogonal", n=12)
    loss0, _, _ = loss_and_grad(_net(D, [0]), inputs, LabelObjective(batch.y), None, 12)
    tcfg = TrainConfig(step="constant", lr=1.0, max_steps=30, dtype="float64")
    at = float(loss0[0])  # a loss equal to the threshold is not below it
    still = train(_net(D, [0]), inputs, LabelObjective(batch.y), 1, tcfg, loss_threshold=at, max_steps=0)
    assert still.converged.tolist() == [False] and still.stopped_by == ["max_steps"]
    moved = train(_net(D, [0]), inputs, LabelObjective(batch.y), 1, tcfg, loss_threshold=at)
    assert moved.steps.tolist() == [1] and moved.converged.tolist() == [True]


def test_a_run_at_the_threshold_stays_stopped_under_a_flow_time_horizon():
    dist, batch, inputs, D = _setup("orthogonal", n=12)
    tcfg = TrainConfig(step="constant", lr=1.0, max_steps=300, loss_threshold=0.8, dtype="float64")
    free = train(_net(D), inputs, LabelObjective(batch.y), 2, tcfg)
    horizon = train(_net(D), inputs, LabelObjective(batch.y), 2, tcfg, max_flow_time=1e9)
    assert free.steps.tolist() == horizon.steps.tolist() and free.steps.min() < 300
    assert torch.equal(free.flow_time, horizon.flow_time)


class _Recording(LabelObjective):
    """Label cross-entropy that keeps the examples of every gradient it is asked for."""

    def __init__(self, y):
        super().__init__(y)
        self.batches: list[list[int]] = []

    def __call__(self, run_logits, idx):
        if torch.is_grad_enabled():
            self.batches.append(idx.tolist())
        return super().__call__(run_logits, idx)


def test_sgd_takes_consecutive_batches_of_reshuffles_from_its_seed():
    dist, batch, inputs, D = _setup("gaussian", n=12)
    order = []
    for seed in (3, 4):
        tcfg = TrainConfig(
            optimizer="sgd",
            batch_size=5,
            shuffle_seed=seed,
            step="constant",
            lr=0.5,
            max_steps=6,
            loss_threshold=0.0,
            log_every=2,
            dtype="float64",
        )
        objective = _Recording(batch.y)
        train(_net(D), inputs, objective, 2, tcfg)
        gen = generator(seed, "sgd-order")
        expected = torch.cat([torch.randperm(12, generator=gen) for _ in range(4)]).tolist()
        got = [i for b in objective.batches for i in b]
        # a batch gradient at each of the 6 steps; the last step (6) only reports the loss
        assert all(len(b) == 5 for b in objective.batches) and len(objective.batches) == 6
        assert got == expected[: len(got)]
        order.append(got)
    assert order[0] != order[1]


# --- the device of the parameters -----------------------------------------------------------------


@pytest.mark.parametrize("step", ["constant", "normalized", "relative"])
def test_step_sizes_are_made_on_the_device_of_the_parameters(step, same_on_meta_default):
    cfg = TrainConfig(step=step, lr=0.8, delta=0.3)
    eta = same_on_meta_default(lambda: step_sizes(PARAMS, GRAD, 2, cfg))
    assert eta.dtype == torch.float64 and eta.shape == (2,)


@pytest.mark.parametrize("noise_model", ["gaussian", "orthogonal"])
def test_loss_and_gradient_are_taken_on_the_device_of_the_parameters(noise_model, same_on_meta_default):
    """The examples of each chunk are indexed on the labels' device: under a meta default device
    the loss, accuracy and gradient are those of the CPU."""
    dist, batch, inputs, D = _setup(noise_model, n=10)
    net = _net(D)
    objective = LabelObjective(batch.y)
    for chunk in (10, 3):
        loss, acc, grad = same_on_meta_default(
            lambda chunk=chunk: loss_and_grad(net, inputs, objective, None, chunk)
        )
        assert grad.abs().max() > 0 and 0 < float(loss.min())


@pytest.mark.parametrize("optimizer", ["gd", "sgd"])
def test_training_keeps_its_state_on_the_device_of_the_parameters(optimizer, same_on_meta_default):
    """Which runs are active, their steps and flow times are held next to the parameters (the SGD
    order is drawn on the CPU, as its generator is): under a meta default device training takes
    the same steps to the same weights as on the CPU."""
    tcfg = TrainConfig(
        optimizer=optimizer,
        batch_size=5,
        step="constant",
        lr=0.5,
        max_steps=9,
        loss_threshold=0.5,
        log_every=4,
        dtype="float64",
    )
    res = _trained_on_cpu_and_on_meta_default(same_on_meta_default, tcfg, max_flow_time=2.5)
    assert res.stopped_by == ["loss_threshold", "flow_time"] and res.history["step"].tolist()[:2] == [0, 4]


def _trained_on_cpu_and_on_meta_default(same_on_meta_default, tcfg: TrainConfig, **kwargs):
    """Two runs of ``train`` from the same weights, on the CPU and under a meta default device:
    the same result (``same_on_meta_default``) and the same weights; the result."""
    dist, batch, inputs, D = _setup("orthogonal", n=12)
    nets = [_net(D), _net(D)]
    trained = iter(nets)
    objective = LabelObjective(batch.y)
    res = same_on_meta_default(
        lambda: train(next(trained), inputs, objective, 2, tcfg, **kwargs), ignore=("seconds",)
    )
    assert torch.equal(nets[0].weights, nets[1].weights)
    return res


class _Stop(Exception):
    pass


class _FirstBatch(LabelObjective):
    """Label cross-entropy that keeps the device of the first gradient batch and stops training."""

    device: torch.device | None = None

    def __call__(self, run_logits, idx):
        if torch.is_grad_enabled():
            self.device = idx.device
            raise _Stop
        return super().__call__(run_logits, idx)


def test_sgd_moves_its_batch_to_the_device_of_the_parameters():
    """The order is drawn on the CPU; each batch of it is moved to the parameters' device before
    the examples and labels are indexed. With everything on the meta device training cannot
    read a loss, so the objective stops it at the first batch, and says where the batch was."""
    dist, batch, inputs, D = _setup("gaussian", n=12)
    tcfg = TrainConfig(optimizer="sgd", batch_size=5, step="constant", lr=1.0, max_steps=3, dtype="float64")
    net = TwoLayerCNN(_net(D).weights.to("meta"), 3, 0.1, 0.05)
    objective = _FirstBatch(batch.y.to("meta"))
    with pytest.raises(_Stop):
        train(net, DenseInputs(inputs.X.to("meta")), objective, 2, tcfg)
    assert objective.device == torch.device("meta")


# --- chunk sizes ----------------------------------------------------------------------------------


class _Sized:
    """A learner of known scratch memory per example, on a given device."""

    def __init__(self, per_example: int, device: str = "cpu") -> None:
        self.per_example = per_example
        self.params = torch.empty(1, device=device)

    def scratch_bytes_per_example(self, X) -> int:
        return self.per_example


class _Many:
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


def test_chunk_sizes_from_the_memory_budget():
    MiB = 2**20
    assert chunk_size(_Sized(MiB), _Many(100), TrainConfig(memory_budget_mb=10)) == 10
    assert chunk_size(_Sized(3 * MiB), _Many(100), TrainConfig(memory_budget_mb=10)) == 3
    assert chunk_size(_Sized(30 * MiB), _Many(100), TrainConfig(memory_budget_mb=10)) == 1  # at least one
    assert chunk_size(_Sized(0), _Many(100), TrainConfig(memory_budget_mb=1)) == 100  # at most all
    assert chunk_size(_Sized(0), _Many(10**8), TrainConfig(memory_budget_mb=1)) == MiB
    assert chunk_size(_Sized(MiB), _Many(100), TrainConfig(chunk_size=1)) == 1  # as configured
    assert chunk_size(_Sized(MiB), _Many(5), TrainConfig(chunk_size=7)) == 5
    assert isinstance(chunk_size(_Sized(3 * MiB), _Many(100), TrainConfig(memory_budget_mb=10)), int)


def test_evaluation_chunks_are_cache_sized_on_the_cpu_only():
    big = _Many(10**8)
    assert evaluation_chunk(_Sized(1), big, TrainConfig()) == EVAL_SCRATCH_BYTES
    assert evaluation_chunk(_Sized(0), big, TrainConfig()) == EVAL_SCRATCH_BYTES
    assert evaluation_chunk(_Sized(EVAL_SCRATCH_BYTES * 2), big, TrainConfig()) == 1
    assert evaluation_chunk(_Sized(3 * 2**20), big, TrainConfig(chunk_size=7)) == 7  # as configured
    assert evaluation_chunk(_Sized(3 * 2**20), big, TrainConfig(chunk_size=1)) == 1
    # elsewhere than on the CPU: the memory budget alone
    assert evaluation_chunk(_Sized(2**20, "meta"), big, TrainConfig(memory_budget_mb=64)) == 64


def test_descend_takes_its_blocks_of_rows_as_declared(monkeypatch):
    """The blocks of :func:`descend`: the rows' norms taken block by block (blocks of equal size,
    the last no larger, none under MIN_BLOCK_ROWS: one block instead); 2-D parameters in blocks
    too; without ``keep_norms``, non-contiguous or 1-D parameters, one update and (when asked)
    ``norm(dim=-1)`` of the whole."""
    from multiview import train as train_module
    from multiview.train import descend

    calls: list[int] = []
    real = torch.linalg.vector_norm

    def counting(x, *args, **kwargs):
        calls.append(x.shape[0])
        return real(x, *args, **kwargs)

    monkeypatch.setattr(torch.linalg, "vector_norm", counting)
    g = torch.Generator().manual_seed(0)
    for shape, rows, blocks in [
        ((3, 5, 16, 40), 16, [16] * 15),
        ((3, 5, 16, 40), 17, [16] * 15),
        ((3, 5, 16, 40), 100, [80] * 3),
        ((3, 5, 16, 40), 1, [16] * 15),
        ((1, 47, 40), 16, [47]),  # the last of 16, 16, 15 would be under 16 rows
        ((1, 40, 40), 24, [20, 20]),
        ((1, 31, 40), 16, [31]),  # two blocks of 16 and 15: one instead
        ((40, 40), 20, [20, 20]),  # two axes: rows of the last, in blocks too
    ]:
        monkeypatch.setattr(train_module, "UPDATE_BLOCK_BYTES", rows * shape[-1] * 4)
        params = torch.randn(shape, generator=g)
        grad = torch.randn(shape, generator=g)
        eta = torch.rand(shape[0], generator=g)
        expected = params.clone().addcmul_(grad, eta.view(-1, *([1] * (len(shape) - 1))), value=-1.0)
        calls.clear()
        norms = descend(params, grad, eta, keep_norms=True)
        assert calls == blocks and torch.equal(params, expected)
        assert norms.shape == shape[:-1] and torch.equal(norms, expected.norm(dim=-1))
        calls.clear()
        assert descend(params.clone(), grad, eta) is None and calls == []
    # not contiguous, or one axis: one update, then the norm of the whole
    base = torch.randn(3, 40, 16, generator=g)
    params, grad = base.transpose(1, 2), torch.randn(3, 16, 40, generator=g)
    eta = torch.rand(3, generator=g)
    expected = params.clone().addcmul_(grad, eta.view(3, 1, 1), value=-1.0)
    calls.clear()
    norms = descend(params, grad, eta, keep_norms=True)
    assert calls == [3]  # one norm over the whole (``Tensor.norm`` calls ``vector_norm``)
    assert torch.equal(params, expected) and torch.equal(norms, expected.norm(dim=-1))
    vec = torch.randn(4, generator=g)
    norms = descend(vec, torch.ones(4), torch.full((4,), 0.5), keep_norms=True)
    assert norms is not None and torch.equal(norms, vec.norm(dim=-1))


def test_descend_keeps_its_norms_on_the_device_of_the_parameters(same_on_meta_default):
    from multiview.train import descend

    g = torch.Generator().manual_seed(5)
    params = torch.randn(2, 3, 4, 10, generator=g)
    grad = torch.randn(params.shape, generator=g)
    eta = torch.tensor([0.5, 0.25])
    same_on_meta_default(lambda: descend(params.clone(), grad, eta, keep_norms=True))


def test_the_relative_rule_reads_the_norms_taken_in_cache_at_every_step(monkeypatch):
    """Under the relative rule, gradient descent and SGD hand ``step_sizes`` the gradient's row
    norms from the backward pass at every step, and the weights' norms kept by the previous
    update from the second step on, each of the parameters' shape without the last axis."""
    from multiview import train as train_module

    dist, batch, inputs, D = _setup("orthogonal", n=10)
    seen: list[tuple[bool, tuple | None]] = []
    real = train_module.step_sizes

    def recording(params, grad, n_runs, cfg, param_norms=None, grad_norms=None):
        assert grad_norms is not None and grad_norms.shape == params.shape[:-1]
        assert torch.equal(grad_norms, grad.norm(dim=-1))
        if param_norms is not None:
            assert torch.equal(param_norms, params.norm(dim=-1))
        seen.append((param_norms is not None, None))
        return real(params, grad, n_runs, cfg, param_norms, grad_norms)

    monkeypatch.setattr(train_module, "step_sizes", recording)
    for extra in ({}, {"optimizer": "sgd", "batch_size": 4}):
        seen.clear()
        tcfg = TrainConfig(
            step="relative", lr=1e9, delta=0.05, max_steps=3, loss_threshold=0.0, dtype="float64", **extra
        )
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an ``out=`` of the wrong shape would be resized, with a warning
            train(_net(D), inputs, LabelObjective(batch.y), 2, tcfg)
        assert [kept for kept, _ in seen] == [False, True, True]


@pytest.mark.parametrize("optimizer", ["gd", "sgd"])
def test_the_relative_rule_keeps_its_norms_on_the_device_of_the_parameters(optimizer, same_on_meta_default):
    """The gradient's and the weights' row norms of the relative rule are made next to the
    parameters: under a meta default device the same steps to the same weights as on the CPU."""
    tcfg = TrainConfig(
        optimizer=optimizer,
        batch_size=5,
        step="relative",
        lr=1e9,
        delta=0.05,
        max_steps=4,
        loss_threshold=0.0,
        dtype="float64",
    )
    _trained_on_cpu_and_on_meta_default(same_on_meta_default, tcfg)
