"""The input pipeline: the data set on the device as uint8, augmentation on whole batches.

Images stay on the device as (N, 3, 32, 32) uint8 (4× less memory than float). For each epoch one
random permutation, one crop offset (dy, dx) ∈ [0, 2p]² and one flip bit per image are drawn from
the model's seeded CPU generator and moved to the device once; each batch is then padded,
cropped with one gather, flipped with one ``where``, and normalized, all as batched tensor ops.
The same code runs on CPU and CUDA and draws the same numbers on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class DeviceSet:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 on one device."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @classmethod
    def from_arrays(cls, x: np.ndarray, y: np.ndarray, device: torch.device | str) -> DeviceSet:
        """x (N, 32, 32, 3) uint8 HWC, y (N,) int → a set on ``device``."""
        images = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).contiguous()
        return cls(images.to(device), torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device))


def channel_stats(x: np.ndarray, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std on the [0, 1] scale of (N, H, W, C) uint8 images (float64 sums over
    chunks of images, so no float copy of the whole data set is made)."""
    total = np.zeros(x.shape[-1])
    squares = np.zeros(x.shape[-1])
    for s in range(0, len(x), chunk):
        v = x[s : s + chunk].reshape(-1, x.shape[-1]).astype(np.float32) / 255.0
        total += v.sum(0, dtype=np.float64)
        squares += (v * v).sum(0, dtype=np.float64)
    n = x.size // x.shape[-1]
    mean = total / n
    std = np.sqrt(np.maximum(squares / n - mean * mean, 1e-12))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def reflect_index(n: int, pad: int, device: torch.device | str = "cpu") -> Tensor:
    """Source indices of a reflect-padded axis of length n + 2·pad (edge not repeated)."""
    i = torch.arange(-pad, n + pad, device=device).abs()
    return torch.where(i > n - 1, 2 * (n - 1) - i, i)


def pad_images(x: Tensor, pad: int, mode: str) -> Tensor:
    """(B, C, H, W) → (B, C, H + 2p, W + 2p), zero or reflect padding, any dtype (uint8 included)."""
    if pad == 0:
        return x
    if mode == "zeros":
        return F.pad(x, (pad, pad, pad, pad))
    H, W = x.shape[-2:]
    return x.index_select(2, reflect_index(H, pad, x.device)).index_select(3, reflect_index(W, pad, x.device))


def crop(x_padded: Tensor, offsets: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop each image of (B, C, H', W') at its own (dy, dx) = offsets[b] (B, 2) to (B, C, h, w),
    with one gather."""
    B, C = x_padded.shape[:2]
    h, w = size
    dev = x_padded.device
    rows = offsets[:, 0, None] + torch.arange(h, device=dev)  # (B, h)
    cols = offsets[:, 1, None] + torch.arange(w, device=dev)  # (B, w)
    b = torch.arange(B, device=dev)[:, None, None, None]
    c = torch.arange(C, device=dev)[None, :, None, None]
    return x_padded[b, c, rows[:, None, :, None], cols[:, None, None, :]]


def flip(x: Tensor, mask: Tensor) -> Tensor:
    """Mirror the images of (B, C, H, W) where mask (B,) is true."""
    return torch.where(mask[:, None, None, None], x.flip(-1), x)


def augment(x: Tensor, offsets: Tensor | None, flips: Tensor | None, pad: int, mode: str) -> Tensor:
    """Random crop after ``pad`` pixels of padding (offsets (B, 2) in [0, 2·pad]) and flips (B,),
    on uint8 or float images (B, C, H, W); None skips a step."""
    if offsets is not None and pad > 0:
        x = crop(pad_images(x, pad, mode), offsets, x.shape[-2:])
    if flips is not None:
        x = flip(x, flips)
    return x


class Normalizer:
    """uint8 (B, 3, H, W) → float32 (x/255 − mean)/std, channels-last if asked."""

    def __init__(
        self, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device, channels_last: bool
    ):
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)
        self.channels_last = channels_last

    def __call__(self, x: Tensor) -> Tensor:
        out = (x.float() / 255.0 - self.mean) / self.std
        return out.contiguous(memory_format=torch.channels_last) if self.channels_last else out


@dataclass
class EpochDraws:
    """One epoch's random numbers (on the device): order (N,), offsets (N, 2), flips (N,)."""

    order: Tensor
    offsets: Tensor | None
    flips: Tensor | None


def draw_epoch(n: int, pad: int, do_flip: bool, gen: torch.Generator, device: torch.device) -> EpochDraws:
    """Draw on the CPU generator (the same numbers on every device), move once."""
    order = torch.randperm(n, generator=gen)
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen) if pad > 0 else None
    flips = torch.rand(n, generator=gen) < 0.5 if do_flip else None
    return EpochDraws(
        order.to(device),
        None if offsets is None else offsets.to(device),
        None if flips is None else flips.to(device),
    )


def epoch_batches(
    data: DeviceSet,
    batch_size: int,
    draws: EpochDraws,
    normalize: Normalizer,
    pad: int,
    pad_mode: str,
) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Yield (x (B, 3, 32, 32) float normalized, y (B,), idx (B,)) over one epoch: full batches
    in ``draws.order`` (a final partial batch is dropped unless it is the only one)."""
    n = len(data)
    steps = max(1, n // batch_size)
    for s in range(steps):
        pos = draws.order[s * batch_size : (s + 1) * batch_size]
        offsets = None if draws.offsets is None else draws.offsets[pos]
        flips = None if draws.flips is None else draws.flips[pos]
        x = augment(data.images[pos], offsets, flips, pad, pad_mode)
        yield normalize(x), data.labels[pos], pos


def tta_views(x: Tensor, level: int) -> list[tuple[Tensor, float]]:
    """Test-time views of normalized images (B, C, H, W) with their weights (summing to 1):
    level 0 the images; 1 the images and their mirror; 2 those two (weight ½ together) and the
    four one-pixel diagonal translations of both (reflect padding; weight ½ together)."""
    if level == 0:
        return [(x, 1.0)]
    mirrored = x.flip(-1)
    if level == 1:
        return [(x, 0.5), (mirrored, 0.5)]
    H, W = x.shape[-2:]
    views = [(x, 0.25), (mirrored, 0.25)]
    for img in (x, mirrored):
        padded = F.pad(img, (1, 1, 1, 1), mode="reflect")
        for dy, dx in ((0, 0), (2, 2)):
            views.append((padded[..., dy : dy + H, dx : dx + W].contiguous(memory_format=_fmt(x)), 0.125))
    return views


def _fmt(x: Tensor) -> torch.memory_format:
    return (
        torch.channels_last
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
        else torch.contiguous_format
    )
