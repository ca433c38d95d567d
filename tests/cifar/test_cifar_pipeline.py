"""The device pipeline: padding, crops within bounds, flips, per-epoch draws, normalization, TTA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from multiview.cifar.pipeline import (
    DeviceSet,
    Normalizer,
    augment,
    channel_stats,
    crop,
    draw_epoch,
    epoch_batches,
    flip,
    pad_images,
    reflect_index,
    tta_views,
)


def images(n: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("mode,np_mode", [("zeros", "constant"), ("reflect", "reflect")])
def test_padding_matches_numpy(mode, np_mode):
    x = images()
    got = pad_images(x, 4, mode)
    want = np.pad(x.numpy(), ((0, 0), (0, 0), (4, 4), (4, 4)), mode=np_mode)
    assert got.dtype == torch.uint8 and got.shape == (6, 3, 40, 40)
    np.testing.assert_array_equal(got.numpy(), want)
    np.testing.assert_array_equal(reflect_index(5, 2).numpy(), [2, 1, 0, 1, 2, 3, 4, 3, 2])


def test_crop_takes_each_window_at_its_own_offset():
    x = images()
    padded = pad_images(x, 4, "zeros")
    offsets = torch.tensor([[0, 0], [8, 8], [0, 8], [8, 0], [4, 4], [3, 5]])
    out = crop(padded, offsets, (32, 32))
    for b, (dy, dx) in enumerate(offsets.tolist()):
        np.testing.assert_array_equal(out[b].numpy(), padded[b, :, dy : dy + 32, dx : dx + 32].numpy())
    np.testing.assert_array_equal(out[4].numpy(), x[4].numpy())  # offset (p, p) is the image itself


def test_random_crops_stay_within_the_padding():
    """Every crop is the image translated by at most p pixels: the rows and columns that come from
    the image match it exactly, the rest is zero padding."""
    x = images(64, seed=3).clamp_min(1)  # no zero pixels in the image itself
    gen = torch.Generator().manual_seed(0)
    draws = draw_epoch(64, 4, False, gen, torch.device("cpu"))
    assert (
        draws.offsets.min() >= 0
        and draws.offsets.max() <= 8
        and len(set(map(tuple, draws.offsets.tolist()))) > 20
    )
    out = augment(x, draws.offsets, None, 4, "zeros")
    for b in range(64):
        dy, dx = (draws.offsets[b] - 4).tolist()
        shifted = np.zeros((3, 32, 32), np.uint8)
        src = x[b].numpy()
        ys, xs = slice(max(0, dy), 32 + min(0, dy)), slice(max(0, dx), 32 + min(0, dx))
        yd, xd = slice(max(0, -dy), 32 - max(0, dy)), slice(max(0, -dx), 32 - max(0, dx))
        shifted[:, yd, xd] = src[:, ys, xs]
        np.testing.assert_array_equal(out[b].numpy(), shifted)


def test_flip_mirrors_exactly_the_masked_images():
    x = images(4)
    mask = torch.tensor([True, False, True, False])
    out = flip(x, mask)
    np.testing.assert_array_equal(out[0].numpy(), x[0].numpy()[..., ::-1])
    np.testing.assert_array_equal(out[1].numpy(), x[1].numpy())
    np.testing.assert_array_equal(out[2].numpy(), x[2].numpy()[..., ::-1])
    gen = torch.Generator().manual_seed(1)
    flips = draw_epoch(10_000, 0, True, gen, torch.device("cpu")).flips
    assert 0.47 < flips.float().mean() < 0.53


def test_epoch_draws_are_seeded_and_batches_cover_the_epoch():
    n, B = 250, 64
    x = images(n, seed=4)
    y = torch.arange(n) % 10
    data = DeviceSet(x, y)
    norm = Normalizer((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), torch.device("cpu"), channels_last=True)
    d1 = draw_epoch(n, 2, True, torch.Generator().manual_seed(7), torch.device("cpu"))
    d2 = draw_epoch(n, 2, True, torch.Generator().manual_seed(7), torch.device("cpu"))
    d3 = draw_epoch(n, 2, True, torch.Generator().manual_seed(8), torch.device("cpu"))
    assert (
        torch.equal(d1.order, d2.order)
        and torch.equal(d1.offsets, d2.offsets)
        and torch.equal(d1.flips, d2.flips)
    )
    assert not torch.equal(d1.order, d3.order)
    assert sorted(d1.order.tolist()) == list(range(n))
    batches = list(epoch_batches(data, B, d1, norm, 2, "reflect"))
    assert len(batches) == n // B
    seen = torch.cat([idx for _, _, idx in batches])
    assert len(set(seen.tolist())) == (n // B) * B
    for xb, yb, idx in batches:
        assert xb.shape == (B, 3, 32, 32) and xb.dtype == torch.float32
        assert xb.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(yb, y[idx])
    # With no augmentation a batch is exactly the normalized images.
    plain = draw_epoch(n, 0, False, torch.Generator().manual_seed(7), torch.device("cpu"))
    xb, _, idx = next(epoch_batches(data, B, plain, norm, 0, "zeros"))
    torch.testing.assert_close(xb, (x[idx].float() / 255 - 0.5) / 0.25)


def test_one_batch_when_the_set_is_smaller_than_a_batch():
    data = DeviceSet(images(10), torch.arange(10))
    norm = Normalizer((0.0,) * 3, (1.0,) * 3, torch.device("cpu"), channels_last=False)
    draws = draw_epoch(10, 0, False, torch.Generator().manual_seed(0), torch.device("cpu"))
    batches = list(epoch_batches(data, 64, draws, norm, 0, "zeros"))
    assert len(batches) == 1 and batches[0][0].shape[0] == 10


def test_channel_stats_match_numpy():
    x = np.random.default_rng(0).integers(0, 256, (50, 32, 32, 3), dtype=np.uint8)
    mean, std = channel_stats(x, chunk=7)
    v = x.reshape(-1, 3) / 255.0
    np.testing.assert_allclose(mean, v.mean(0), rtol=1e-6)
    np.testing.assert_allclose(std, v.std(0), rtol=1e-5)


def test_tta_views_weights_and_content():
    x = torch.randn(2, 3, 32, 32)
    for level, count in ((0, 1), (1, 2), (2, 6)):
        views = tta_views(x, level)
        assert len(views) == count
        assert sum(w for _, w in views) == pytest.approx(1.0)
        assert all(v.shape == x.shape for v, _ in views)
    v = tta_views(x, 2)
    torch.testing.assert_close(v[0][0], x)
    torch.testing.assert_close(v[1][0], x.flip(-1))
    torch.testing.assert_close(v[2][0][..., 1:, 1:], x[..., :-1, :-1])  # shifted down-right by one pixel
    torch.testing.assert_close(v[3][0][..., :-1, :-1], x[..., 1:, 1:])  # shifted up-left by one pixel
