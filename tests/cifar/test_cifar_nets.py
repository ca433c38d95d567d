"""Networks: forward and backward of every architecture, sizes, seeded initialization, cut points,
whitening, training-the-average and channel-split wrappers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from multiview.cifar.config import ConfigError, parse_arch
from multiview.cifar.nets import AverageNet, SplitNet, build_net, param_count, whitening_filters


def _forward_backward(arch: str, classes: int = 10, **kw) -> None:
    net = build_net(arch, classes, seed=0, **kw)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = net(x)
    assert out.shape == (2, classes) and torch.isfinite(out).all()
    F.cross_entropy(out, torch.tensor([1, 3])).backward()
    trainable = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    assert trainable
    for name, p in trainable:
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert sum(float(p.grad.abs().sum()) for _, p in trainable) > 0


@pytest.mark.parametrize("arch", ["fast", "wrn-28-2", "wrn-16-10", "resnet18"])
def test_forward_backward(arch):
    _forward_backward(arch)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["wrn-28-10", "wrn-22-10", "resnet34"])
def test_forward_backward_large(arch):
    _forward_backward(arch, classes=100)


def test_sizes_match_the_published_architectures():
    # WRN-28-10: 36.5 M parameters (Zagoruyko & Komodakis); ResNet-34 / ResNet-18 with a CIFAR stem.
    assert param_count(build_net("wrn-28-10", 10, 0)) == 36_479_194
    assert param_count(build_net("resnet34", 10, 0)) == 21_282_122
    assert param_count(build_net("resnet18", 10, 0)) == 11_173_962
    assert param_count(build_net("wrn-28-10", 100, 0)) == 36_479_194 + 90 * 641
    assert param_count(build_net("fast", 10, 0, fast_width=64)) == 1_972_792


def test_arch_names():
    assert parse_arch("ResNet-28-10").name == "wrn-28-10"
    assert parse_arch("WRN_16_10").name == "wrn-16-10"
    assert parse_arch("resnet-34").name == "resnet34"
    assert parse_arch("resnet34-2").name == "resnet34-2"
    with pytest.raises(ConfigError, match="model.arch = 'wrn-27-10'"):
        parse_arch("wrn-27-10")
    with pytest.raises(ConfigError, match="unknown architecture"):
        parse_arch("vgg16")


def test_initialization_depends_on_the_seed_only():
    torch.manual_seed(123)
    a = build_net("wrn-16-2", 10, seed=5).state_dict()
    torch.manual_seed(456)
    b = build_net("wrn-16-2", 10, seed=5).state_dict()
    c = build_net("wrn-16-2", 10, seed=6).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["stages.1.0.conv1.weight"], c["stages.1.0.conv1.weight"])
    fa, fb = build_net("fast", 10, seed=1, fast_width=8), build_net("fast", 10, seed=2, fast_width=8)
    assert not torch.equal(fa.head[2].weight, fb.head[2].weight)


def test_fast_net_frozen_parts_and_identity_start():
    net = build_net("fast", 10, seed=0, fast_width=8)
    assert not net.stages[0].conv.weight.requires_grad and net.stages[0].conv.bias.requires_grad
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(not m.weight.requires_grad and m.bias.requires_grad for m in norms)
    w = net.stages[2].conv2.weight.detach()  # 32 → 32: every filter starts as the identity
    assert torch.equal(w[:, :, 1, 1], torch.eye(32)) and float(w.abs().sum()) == 32.0
    net.set_whiten_bias_trainable(False)
    assert not net.stages[0].conv.bias.requires_grad


def test_whitening_decorrelates_patches():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(200, 3, 32, 32, generator=g)
    x = (
        base + 0.8 * base.roll(1, dims=-1) + 0.5 * base.mean(1, keepdim=True)
    )  # correlated pixels and channels
    filters = whitening_filters(x, eps=1e-6)
    assert filters.shape == (24, 3, 2, 2)
    torch.testing.assert_close(filters[12:], -filters[:12])
    out = F.conv2d(x, filters[:12]).permute(1, 0, 2, 3).reshape(12, -1)
    cov = out @ out.T / out.shape[1]
    torch.testing.assert_close(cov, torch.eye(12), atol=2e-3, rtol=0)


@pytest.mark.parametrize("arch,width", [("fast", 8), ("wrn-16-2", 1), ("resnet18", 1)])
def test_cut_points(arch, width):
    net = build_net(arch, 10, seed=0, fast_width=width).eval()
    x = torch.randn(2, 3, 32, 32)
    for cut in ("a", "b"):
        last = net.cuts[cut]
        h = net.features(x, last)
        assert h.shape[1] == net.cut_channels[cut]
        torch.testing.assert_close(net.forward_from(h, last + 1), net(x))
    assert net.cut_channels["b"] > net.cut_channels["a"]


def test_split_net_trains_only_the_new_top():
    bottom = build_net("fast", 10, seed=0, fast_width=8)
    last = bottom.cuts["b"]
    keep = torch.tensor([1, 5, 9, 30])
    top = build_net("fast", 10, seed=1, fast_width=8, first_in={last + 1: 4})
    net = SplitNet(bottom, last, keep, top)
    before = {k: v.clone() for k, v in bottom.state_dict().items()}
    net.train()
    assert not net.bottom.training and net.top.training
    out = net(torch.randn(4, 3, 32, 32))
    assert out.shape == (4, 10)
    out.sum().backward()
    assert all(p.grad is None for p in net.bottom.parameters())
    assert net.top.stages[last + 1].conv1.weight.grad is not None
    assert net.top.stages[last + 1].conv1.weight.shape[1] == 4
    assert all(torch.equal(before[k], v) for k, v in net.bottom.state_dict().items())  # BN statistics too
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) < param_count(top) + 1


def test_average_net_is_the_mean_of_its_members():
    members = [build_net("fast", 10, seed=s, fast_width=8).eval() for s in range(3)]
    avg = AverageNet(members).eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(avg(x), torch.stack([m(x) for m in members]).mean(0))
    assert avg.member_logits(x).shape == (3, 2, 10)
