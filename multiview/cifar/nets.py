"""Networks for CIFAR: a fast default, WideResNet-d-k, ResNet-18/34 with a CIFAR stem.

Every network is a :class:`StagedNet`: a list of stages and a head, so that the channel-split
experiment can run the stages up to a cut point (``features``) and the rest from there
(``forward_from``). Cut ``a`` is after the first block group, ``b`` after the second (for
WRN-28-10: 160 and 320 channels, the paper's two cut points).

* ``fast``: an airbench94-class conv net: a frozen 2×2 whitening convolution (its filters from
  the eigenvectors of the training images' 2×2-patch covariance, ± each), GELU, three groups of
  [3×3 conv, 2×2 max-pool, BatchNorm, GELU, 3×3 conv, BatchNorm, GELU] with w, 4w, 4w channels,
  3×3 max-pool, a linear layer without bias, logits scaled by 1/9. BatchNorm scales are fixed at
  1 (biases trained); the first in-channels filters of each 3×3 conv start as the identity.
* ``wrn-d-k``: pre-activation WideResNet (Zagoruyko & Komodakis), (d − 4)/6 blocks per group,
  widths 16k, 32k, 64k.
* ``resnet34`` / ``resnet18`` (``-w`` for w × width): BasicBlock ResNet with a 3×3 stride-1 stem
  and no max-pool.

Initialization draws from a seeded ``torch.Generator`` (one per model), on the CPU, so a model's
initial weights depend only on its seed, whatever the device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from multiview.cifar.config import ArchSpec, parse_arch


class StagedNet(nn.Module):
    """stages[0] … stages[-1], then the head. ``cuts`` maps a cut name to the index of the last
    stage below it; ``cut_channels`` to the number of channels there."""

    def __init__(
        self, stages: list[nn.Module], head: nn.Module, cuts: dict[str, int], cut_channels: dict[str, int]
    ):
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.head = head
        self.cuts = dict(cuts)
        self.cut_channels = dict(cut_channels)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, 32, 32) → logits (B, k)."""
        return self.forward_from(x, 0)

    def features(self, x: Tensor, last: int) -> Tensor:
        """Output of stages[0..last] for images x (B, 3, 32, 32)."""
        for stage in self.stages[: last + 1]:
            x = stage(x)
        return x

    def forward_from(self, h: Tensor, start: int) -> Tensor:
        """Logits (B, k) from the input h of stages[start]."""
        for stage in self.stages[start:]:
            h = stage(h)
        return self.head(h)

    def set_whiten_bias_trainable(self, flag: bool) -> None:
        stem = self.stages[0]
        if isinstance(stem, Whiten):
            stem.conv.bias.requires_grad_(flag)


# --------------------------------------------------------------------------------------------
# The fast network
# --------------------------------------------------------------------------------------------


class Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        return x * self.factor


class Whiten(nn.Module):
    """Frozen 2×2 whitening convolution (3 → 24 channels, no padding) with a trainable bias, GELU."""

    def __init__(self, width: int = 24):
        super().__init__()
        self.conv = nn.Conv2d(3, width, kernel_size=2, padding=0, bias=True)
        self.conv.weight.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(self.conv(x))


def _fast_norm(channels: int) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels, eps=1e-12, momentum=0.4)
    bn.weight.requires_grad_(False)
    return bn


class FastGroup(nn.Module):
    """conv3×3 → max-pool 2 → BN → GELU → conv3×3 → BN → GELU; halves the resolution."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.norm1 = _fast_norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = _fast_norm(cout)

    def forward(self, x: Tensor) -> Tensor:
        x = F.gelu(self.norm1(F.max_pool2d(self.conv1(x), 2)))
        return F.gelu(self.norm2(self.conv2(x)))


def fast_net(num_classes: int, width: int = 64, first_in: dict[int, int] | None = None) -> StagedNet:
    cin = {1: 24, 2: width, 3: 4 * width} | (first_in or {})
    stages = [
        Whiten(24),
        FastGroup(cin[1], width),
        FastGroup(cin[2], 4 * width),
        FastGroup(cin[3], 4 * width),
    ]
    head = nn.Sequential(
        nn.MaxPool2d(3), nn.Flatten(), nn.Linear(4 * width, num_classes, bias=False), Scale(1 / 9)
    )
    return StagedNet(stages, head, {"a": 1, "b": 2}, {"a": width, "b": 4 * width})


def whitening_filters(images: Tensor, eps: float = 5e-4, chunk: int = 256) -> Tensor:
    """Whitening filters (24, 3, 2, 2) from normalized images (n, 3, H, W): the eigenvectors of
    the 2×2-patch covariance divided by √(eigenvalue + eps), and their negatives."""
    x = images.detach().float().cpu()
    cov = torch.zeros(12, 12, dtype=torch.float64)
    count = 0
    for s in range(0, len(x), chunk):
        patches = F.unfold(x[s : s + chunk], kernel_size=2).transpose(1, 2).reshape(-1, 12).double()
        cov += patches.T @ patches
        count += patches.shape[0]
    evals, evecs = torch.linalg.eigh(cov / count)
    evals, evecs = evals.flip(0), evecs.flip(1)
    filters = (evecs.T / torch.sqrt(evals.clamp_min(0) + eps)[:, None]).reshape(12, 3, 2, 2)
    return torch.cat([filters, -filters]).float()


# --------------------------------------------------------------------------------------------
# WideResNet
# --------------------------------------------------------------------------------------------


class WideBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3×3-BN-ReLU-conv3×3, 1×1 conv shortcut on a shape change."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.shortcut = (
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False) if stride != 1 or cin != cout else None
        )

    def forward(self, x: Tensor) -> Tensor:
        o = F.relu(self.bn1(x))
        y = self.conv2(F.relu(self.bn2(self.conv1(o))))
        return y + (self.shortcut(o) if self.shortcut is not None else x)


def wide_resnet(depth: int, k: int, num_classes: int, first_in: dict[int, int] | None = None) -> StagedNet:
    n = (depth - 4) // 6
    widths = [16, 16 * k, 32 * k, 64 * k]
    cin = {1: widths[0], 2: widths[1], 3: widths[2]} | (first_in or {})
    stages: list[nn.Module] = [nn.Conv2d(3, 16, 3, padding=1, bias=False)]
    for g, stride in zip((1, 2, 3), (1, 2, 2), strict=True):
        blocks = [WideBlock(cin[g], widths[g], stride)] + [
            WideBlock(widths[g], widths[g], 1) for _ in range(n - 1)
        ]
        stages.append(nn.Sequential(*blocks))
    head = nn.Sequential(
        nn.BatchNorm2d(widths[3]),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(widths[3], num_classes),
    )
    return StagedNet(stages, head, {"a": 1, "b": 2}, {"a": widths[1], "b": widths[2]})


# --------------------------------------------------------------------------------------------
# ResNet-18 / 34 with a CIFAR stem
# --------------------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """conv3×3-BN-ReLU-conv3×3-BN plus shortcut (1×1 conv + BN on a shape change), then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + self.shortcut(x))


def resnet(depth: int, width: int, num_classes: int, first_in: dict[int, int] | None = None) -> StagedNet:
    blocks = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}[depth]
    widths = [64 * width, 64 * width, 128 * width, 256 * width, 512 * width]
    cin = {i: widths[i - 1] for i in range(1, 5)} | (first_in or {})
    stages: list[nn.Module] = [
        nn.Sequential(nn.Conv2d(3, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
    ]
    for i, (count, stride) in enumerate(zip(blocks, (1, 2, 2, 2), strict=True), start=1):
        layer = [BasicBlock(cin[i], widths[i], stride)] + [
            BasicBlock(widths[i], widths[i], 1) for _ in range(count - 1)
        ]
        stages.append(nn.Sequential(*layer))
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[4], num_classes))
    return StagedNet(stages, head, {"a": 1, "b": 2}, {"a": widths[1], "b": widths[2]})


# --------------------------------------------------------------------------------------------
# Building, seeded initialization
# --------------------------------------------------------------------------------------------


def build_net(
    arch: str | ArchSpec,
    num_classes: int,
    seed: int,
    *,
    fast_width: int = 64,
    whitening: Tensor | None = None,
    first_in: dict[int, int] | None = None,
) -> StagedNet:
    """A network with its weights drawn from ``torch.Generator().manual_seed(seed)`` (CPU).

    ``whitening`` (24, 3, 2, 2) sets the fast network's frozen first layer (see
    :func:`whitening_filters`). ``first_in`` {stage: channels} changes the input channels of a
    stage's first layer (the channel-split experiment's new top network).
    """
    spec = parse_arch(arch) if isinstance(arch, str) else arch
    if spec.kind == "fast":
        net = fast_net(num_classes, fast_width, first_in)
    elif spec.kind == "wrn":
        net = wide_resnet(spec.depth, spec.width, num_classes, first_in)
    else:
        net = resnet(spec.depth, spec.width, num_classes, first_in)
    init_weights(net, torch.Generator().manual_seed(seed), fast=spec.kind == "fast")
    if spec.kind == "fast" and whitening is not None:
        with torch.no_grad():
            net.stages[0].conv.weight.copy_(whitening)
    return net


def init_weights(net: nn.Module, gen: torch.Generator, fast: bool = False) -> None:
    """Draw every weight from ``gen`` in module order. Residual nets: He-normal (fan-out) convs;
    the fast net: uniform ±1/√fan-in convs with identity-initialized first filters. Linear layers
    uniform ±1/√fan-in, biases 0, BatchNorm (1, 0)."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                if fast:
                    bound = 1.0 / (m.weight[0].numel() ** 0.5)
                    m.weight.uniform_(-bound, bound, generator=gen)
                    if m.kernel_size == (3, 3):
                        _identity_(m.weight)
                else:
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=gen)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.Linear):
                bound = 1.0 / (m.in_features**0.5)
                m.weight.uniform_(-bound, bound, generator=gen)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.fill_(1.0)
                m.bias.zero_()
                m.reset_running_stats()


def _identity_(w: Tensor) -> None:
    """Set the first min(out, in) filters of a 3×3 conv weight (out, in, 3, 3) to the identity."""
    n = min(w.shape[0], w.shape[1])
    w[:n] = 0.0
    idx = torch.arange(n)
    w[idx, idx, 1, 1] = 1.0


def param_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# --------------------------------------------------------------------------------------------
# Composite models: training the average, channel split
# --------------------------------------------------------------------------------------------


class AverageNet(nn.Module):
    """K sub-networks whose logits are averaged: "training the average" (one loss on the mean)."""

    def __init__(self, members: list[StagedNet]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def member_logits(self, x: Tensor) -> Tensor:
        """(K, B, k) logits of each sub-network."""
        return torch.stack([m(x) for m in self.members])

    def forward(self, x: Tensor) -> Tensor:
        return self.member_logits(x).mean(0)

    def set_whiten_bias_trainable(self, flag: bool) -> None:
        for m in self.members:
            m.set_whiten_bias_trainable(flag)


class SplitNet(nn.Module):
    """A trained network's stages up to cut ``last`` (frozen, evaluation mode), a fixed subset
    ``keep`` of that layer's channels, and a new network from the next stage on."""

    def __init__(self, bottom: StagedNet, last: int, keep: Tensor, top: StagedNet):
        super().__init__()
        for p in bottom.parameters():
            p.requires_grad_(False)
        for i in range(last + 1):
            top.stages[i] = nn.Identity()  # the new network starts above the cut
        self.bottom = bottom
        self.top = top
        self.last = last
        self.register_buffer("keep", keep.long())

    def train(self, mode: bool = True) -> SplitNet:
        super().train(mode)
        self.bottom.eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            h = self.bottom.features(x, self.last).index_select(1, self.keep)
        return self.top.forward_from(h, self.last + 1)

    def set_whiten_bias_trainable(self, flag: bool) -> None:
        pass
