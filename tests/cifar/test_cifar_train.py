"""Recipes, schedules, losses, teachers, and that training learns and is reproducible."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from multiview.cifar.nets import build_net
from multiview.cifar.pipeline import DeviceSet, Normalizer
from multiview.cifar.recipes import lr_factor, recipe_named, total_steps
from multiview.cifar.train import (
    KDLoss,
    LabelLoss,
    Teacher,
    accuracy,
    make_optimizer,
    predict,
    prepare,
    train_model,
)
from multiview.losses import practical_kd_loss

CPU = torch.device("cpu")


def colour_data(n: int, seed: int, classes: int = 4) -> DeviceSet:
    """Each class a colour plus noise: learnable in a few steps, not by a constant."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    palette = torch.tensor([[230, 30, 30], [30, 230, 30], [30, 30, 230], [230, 230, 30]], dtype=torch.float32)
    x = palette[y][:, :, None, None] + 40 * torch.randn(n, 3, 32, 32, generator=g)
    return DeviceSet(x.clamp(0, 255).to(torch.uint8), y)


def small_recipe(**kw):
    base = dataclasses.replace(recipe_named("fast"), batch_size=32, epochs=3.0, tta=0, channels_last=False)
    return dataclasses.replace(base, **kw)


NORM = Normalizer((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), CPU, channels_last=False)


def test_step_schedule_multiplies_at_the_milestones():
    r = recipe_named("paper")
    total, per = 200, 1  # one step per epoch: the classic 60 / 120 / 160
    got = [lr_factor(s, total, r, per) for s in (0, 59, 60, 119, 120, 159, 160, 199)]
    assert got == pytest.approx([1, 1, 0.2, 0.2, 0.04, 0.04, 0.008, 0.008])
    assert r.effective_lr() == 0.1 and r.batch_size == 128 and r.momentum == 0.9 and r.nesterov
    assert r.weight_decay == 5e-4 and r.epochs == 200 and r.crop_padding == 4 and r.flip


def test_cosine_and_triangle_schedules():
    c = dataclasses.replace(recipe_named("paper"), schedule="cosine")
    assert lr_factor(0, 100, c, 1) == pytest.approx(1.0)
    assert lr_factor(50, 100, c, 1) == pytest.approx(0.5)
    assert lr_factor(99, 100, c, 1) < 0.01
    w = dataclasses.replace(c, warmup_epochs=5.0)
    assert lr_factor(0, 100, w, 1) == pytest.approx(0.2) and lr_factor(4, 100, w, 1) == pytest.approx(1.0)
    f = recipe_named("fast")
    assert lr_factor(0, 1000, f, 10) == pytest.approx(0.2)
    assert lr_factor(230, 1000, f, 10) == pytest.approx(1.0)
    assert lr_factor(1000, 1000, f, 10) == pytest.approx(0.07)


def test_fast_recipe_scales_the_rate_with_the_batch_and_boosts_norm_biases():
    r = dataclasses.replace(recipe_named("fast"), batch_size=256)
    assert r.effective_lr() == pytest.approx(1.5 * 256 / 1024)
    net = build_net("fast", 10, 0, fast_width=8)
    opt = make_optimizer(net, r)
    main, biases = opt.param_groups
    assert biases["lr"] == pytest.approx(64 * main["lr"])
    assert biases["lr"] * biases["weight_decay"] == pytest.approx(main["lr"] * main["weight_decay"])
    n_bias = sum(p.numel() for p in biases["params"])
    assert n_bias == sum(m.bias.numel() for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert all(p.requires_grad for p in main["params"])  # the frozen whitening filters are left out
    assert total_steps(r, 5000) == 10 * (5000 // 256)


def test_kd_loss_is_the_practical_loss_per_example():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(8, 10, generator=g), torch.randn(8, 10, generator=g)
    y = torch.randint(0, 10, (8,), generator=g)

    class Fixed(Teacher):
        def __call__(self, x, idx):
            return t[idx]

    teacher = Fixed([], "logits", small_recipe(), CPU)
    loss = KDLoss(teacher, t=0.3, temperature=4.0)(s, y, torch.zeros(8), torch.arange(8))
    assert loss == pytest.approx(float(practical_kd_loss(s, t, y, 0.3, 4.0)) / 8)
    ce = KDLoss(teacher, t=1.0, temperature=4.0)(s, y, torch.zeros(8), torch.arange(8))
    assert ce == pytest.approx(float(F.cross_entropy(s, y)))
    smooth = LabelLoss(0.2)(s, y, None, None)
    assert smooth == pytest.approx(float(F.cross_entropy(s, y, label_smoothing=0.2)))


def test_ensemble_teacher_averages_members_and_cache_agrees():
    data = colour_data(40, 0)
    r = small_recipe(crop_padding=0, flip=False)
    members = [build_net("fast", 4, seed=s, fast_width=4).eval() for s in range(3)]
    teacher = Teacher(members, "logits", r, CPU)
    x = NORM(data.images[:5])
    want = torch.stack([m(x) for m in members]).mean(0)
    torch.testing.assert_close(teacher(x, torch.arange(5)), want)
    probs = Teacher(members, "probs", r, CPU)(x, torch.arange(5))
    torch.testing.assert_close(probs.exp().sum(-1), torch.ones(5))
    cache = predict(lambda z: teacher(z, None), data, NORM, r, tta=0)
    cached = Teacher(members, "logits", r, CPU, cache=cache)
    torch.testing.assert_close(cached(x, torch.arange(5)), want, atol=1e-5, rtol=1e-5)


def test_training_learns_an_easy_problem_and_is_reproducible():
    train, test = colour_data(256, 0), colour_data(128, 1)
    r = small_recipe()

    def run():
        net = prepare(build_net("fast", 4, seed=3, fast_width=8), r, CPU)
        stats = train_model(
            net, train, NORM, r, torch.Generator().manual_seed(9), LabelLoss(r.label_smoothing)
        )
        return net, stats

    net, stats = run()
    assert stats.steps == 3 * (256 // 32) and stats.epochs == pytest.approx(3.0)
    assert stats.images_per_second > 0 and stats.seconds > 0
    acc = accuracy(predict(net, test, NORM, r), test.labels)
    assert acc > 0.95, acc
    assert stats.train_accuracy > 0.8
    again, _ = run()
    for (k, a), b in zip(net.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert not net.stages[0].conv.bias.requires_grad or r.whiten_bias_epochs >= 3


def test_kd_student_learns_from_a_teacher_without_labels():
    """t = 0: the student sees only the teacher's soft labels (its own labels are all wrong) and
    still learns the task; the same network trained on those labels gets everything wrong."""
    train, test = colour_data(256, 0), colour_data(128, 1)
    r = small_recipe()
    teacher_net = prepare(build_net("fast", 4, seed=1, fast_width=8), r, CPU)
    train_model(teacher_net, train, NORM, r, torch.Generator().manual_seed(0), LabelLoss())
    assert accuracy(predict(teacher_net, test, NORM, r), test.labels) > 0.95
    teacher = Teacher([teacher_net], "logits", r, CPU)
    wrong = DeviceSet(train.images, (train.labels + 1) % 4)
    accs = {}
    for name, loss in (("kd", KDLoss(teacher, t=0.0, temperature=2.0)), ("labels", LabelLoss())):
        student = prepare(build_net("fast", 4, seed=2, fast_width=8), r, CPU)
        train_model(student, wrong, NORM, r, torch.Generator().manual_seed(1), loss)
        accs[name] = accuracy(predict(student, test, NORM, r), test.labels)
    assert accs["kd"] > 0.7 and accs["labels"] < 0.1, accs


def test_tta_averages_the_views():
    data = colour_data(8, 0)
    net = build_net("fast", 4, seed=0, fast_width=4).eval()
    r = small_recipe()
    plain = predict(net, data, NORM, r, tta=0)
    flipped = predict(lambda x: net(x.flip(-1)), data, NORM, r, tta=0)
    torch.testing.assert_close(predict(net, data, NORM, r, tta=1), (plain + flipped) / 2)
    assert predict(net.forward, data, NORM, r, tta=2).shape == (8, 4)


class Interrupted(Exception):
    """Stands for the end of a job's time limit in the middle of a training."""


def test_a_training_resumed_from_an_epoch_state_ends_as_the_uninterrupted_one():
    train = colour_data(128, 0)
    r = small_recipe(epochs=4.0, whiten_bias_epochs=2)  # the whitening bias freezes mid-way

    def fresh():
        return prepare(build_net("fast", 4, seed=3, fast_width=8), r, CPU)

    whole = fresh()
    seen = []
    stats = train_model(
        whole, train, NORM, r, torch.Generator().manual_seed(9), LabelLoss(), on_epoch=seen.append
    )
    assert [s["epoch"] for s in seen] == [1, 2, 3] and [s["step"] for s in seen] == [4, 8, 12]

    def stop_after_two(state):
        if state["epoch"] == 2:
            saved.update(state)
            raise Interrupted

    saved: dict = {}
    with pytest.raises(Interrupted):
        train_model(
            fresh(), train, NORM, r, torch.Generator().manual_seed(9), LabelLoss(), on_epoch=stop_after_two
        )
    assert torch.equal(
        saved["optimizer"]["state"][0]["momentum_buffer"], seen[1]["optimizer"]["state"][0]["momentum_buffer"]
    )
    resumed = fresh()  # another process: fresh weights and generator, the state from the checkpoint
    again = train_model(
        resumed, train, NORM, r, torch.Generator().manual_seed(123), LabelLoss(), resume=saved
    )
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert (again.steps, again.epochs, again.final_loss, again.train_accuracy) == (
        stats.steps,
        stats.epochs,
        stats.final_loss,
        stats.train_accuracy,
    )
    assert again.seconds >= saved["seconds"] > 0
