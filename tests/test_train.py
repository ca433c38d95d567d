"""The trainer: S batched seeds are S independent runs; step rules; stopping."""

from __future__ import annotations

import pytest
import torch

from multiview.config import DataConfig, TrainConfig
from multiview.data import MultiViewDistribution
from multiview.losses import LabelObjective
from multiview.model import TwoLayerCNN, init_weights
from multiview.train import train

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
