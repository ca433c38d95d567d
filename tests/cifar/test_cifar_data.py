"""Reading CIFAR from every layout, the cache, damaged inputs, balanced subsets."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from cifar_helpers import (
    CIFAR10_NAMES,
    jpeg_bytes,
    random_images,
    tar_folder,
    to_rows,
    write_cifar10_batches,
    write_cifar100,
    write_image_folder,
    write_pickle,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from multiview.cifar import data as data_mod
from multiview.cifar.data import CifarDataError, balanced_subset, download_cifar, load_cifar


def load(*args, cache, **kw):
    return load_cifar(*args, cache_dir=cache, **kw)


# --- layouts ----------------------------------------------------------------------------------


def test_cifar10_pickled_batches_read_exactly(tmp_path):
    w = write_cifar10_batches(tmp_path / "src")
    for path in (w["folder"], w["folder"].parent):  # the folder itself or the folder holding it
        a = load("cifar10", path, cache=tmp_path / "cache")
        np.testing.assert_array_equal(a.train_x, w["train_x"])
        np.testing.assert_array_equal(a.train_y, w["train_y"])
        np.testing.assert_array_equal(a.test_x, w["test_x"])
        np.testing.assert_array_equal(a.test_y, w["test_y"])
        assert a.classes == CIFAR10_NAMES
        assert a.layout == "batches"
        assert a.train_x.dtype == np.uint8 and a.train_x.shape == (30, 32, 32, 3)


def test_cifar100_fine_and_coarse_labels(tmp_path):
    w = write_cifar100(tmp_path / "src")
    fine = load("cifar100", tmp_path / "src", cache=tmp_path / "cache")
    coarse = load("cifar100", w["folder"], labels="coarse", cache=tmp_path / "cache")
    np.testing.assert_array_equal(fine.train_x, w["train_x"])
    np.testing.assert_array_equal(fine.train_y, w["train_fine"])
    np.testing.assert_array_equal(fine.test_y, w["test_fine"])
    np.testing.assert_array_equal(coarse.train_y, w["train_coarse"])
    np.testing.assert_array_equal(coarse.test_x, w["test_x"])
    assert fine.num_classes == 100 and coarse.num_classes == 20
    assert fine.classes[3] == "fine03" and coarse.classes[19] == "coarse19"
    assert fine.fingerprint != coarse.fingerprint


def test_image_folder_png_is_lossless_and_ordered_by_class(tmp_path):
    w = write_image_folder(tmp_path / "tree", per_class=2, fmt="png")
    a = load("cifar10", tmp_path / "tree", cache=tmp_path / "cache")
    np.testing.assert_array_equal(a.train_x, w["train_x"])
    np.testing.assert_array_equal(a.train_y, w["train_y"])
    np.testing.assert_array_equal(a.test_y, np.arange(10))
    assert a.classes == CIFAR10_NAMES and a.layout == "imagefolder"


def test_tar_gz_of_image_folder_equals_the_folder(tmp_path):
    write_image_folder(tmp_path / "tree", per_class=2, fmt="jpg")
    archive = tar_folder(tmp_path / "tree", tmp_path / "cifar10-jpeg.tar.gz", arcname="CIFAR-10-images")
    a = load("cifar10", tmp_path / "tree", cache=tmp_path / "c1")
    b = load("cifar10", archive, cache=tmp_path / "c2")
    assert b.layout == "imagefolder-archive"
    for key in ("train_x", "train_y", "test_x", "test_y"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert a.fingerprint == b.fingerprint


def test_tar_gz_of_torchvision_batches(tmp_path):
    w = write_cifar10_batches(tmp_path / "src")
    archive = tar_folder(w["folder"], tmp_path / "cifar-10-python.tar.gz", arcname="cifar-10-batches-py")
    a = load("cifar10", archive, cache=tmp_path / "cache")
    assert a.layout == "batches-archive"
    np.testing.assert_array_equal(a.train_x, w["train_x"])
    np.testing.assert_array_equal(a.test_y, w["test_y"])


def test_real_archive_has_cifar10_shape(real_arrays):
    a = real_arrays
    assert a.train_x.shape == (50000, 32, 32, 3) and a.test_x.shape == (10000, 32, 32, 3)
    assert np.bincount(a.train_y).tolist() == [5000] * 10
    assert np.bincount(a.test_y).tolist() == [1000] * 10
    assert a.classes == CIFAR10_NAMES
    # JPEG re-encoding moves pixels a little: the channel means stay CIFAR-10's (0.491, 0.482, 0.447).
    means = a.train_x[::10].reshape(-1, 3).mean(0) / 255
    np.testing.assert_allclose(means, [0.491, 0.482, 0.447], atol=0.01)


# --- damaged or wrong inputs --------------------------------------------------------------------


def test_missing_path_says_what_was_expected(tmp_path):
    with pytest.raises(CifarDataError, match="does not exist: expected torchvision's cifar-10-batches-py"):
        load("cifar10", tmp_path / "nowhere", cache=tmp_path / "cache")


def test_truncated_archive_is_a_clear_error(tmp_path):
    write_image_folder(tmp_path / "tree", per_class=2, fmt="jpg")
    archive = tar_folder(tmp_path / "tree", tmp_path / "data.tar.gz", arcname="x")
    blob = archive.read_bytes()
    archive.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(
        CifarDataError, match=r"data\.tar\.gz: cannot read the archive .*damaged or truncated"
    ):
        load("cifar10", archive, cache=tmp_path / "cache")


def test_corrupt_jpeg_names_the_file(tmp_path):
    write_image_folder(tmp_path / "tree", per_class=2, fmt="jpg")
    bad = tmp_path / "tree" / "train" / "cat" / "0001.jpg"
    bad.write_bytes(jpeg_bytes(random_images(1, 5)[0])[:40])
    with pytest.raises(CifarDataError, match=r"train/cat/0001\.jpg: cannot decode the image"):
        load("cifar10", tmp_path / "tree", cache=tmp_path / "cache")


def test_wrong_image_size_names_the_file(tmp_path):
    from PIL import Image

    write_image_folder(tmp_path / "tree", per_class=1, fmt="png")
    Image.new("RGB", (64, 48)).save(tmp_path / "tree" / "test" / "dog" / "0000.png")
    with pytest.raises(CifarDataError, match=r"test/dog/0000\.png: expected a 32×32 image, got 64×48"):
        load("cifar10", tmp_path / "tree", cache=tmp_path / "cache")


def test_missing_batch_file_is_named(tmp_path):
    w = write_cifar10_batches(tmp_path / "src")
    (w["folder"] / "data_batch_3").unlink()
    with pytest.raises(CifarDataError, match=r"data_batch_3 is missing: a cifar-10-batches-py folder holds"):
        load("cifar10", w["folder"], cache=tmp_path / "cache")


def test_garbage_pickle_is_a_clear_error(tmp_path):
    w = write_cifar10_batches(tmp_path / "src")
    (w["folder"] / "data_batch_2").write_bytes(b"\x80\x02}q\x00(this is not a batch")
    with pytest.raises(CifarDataError, match=r"data_batch_2: cannot read it as a pickled CIFAR batch"):
        load("cifar10", w["folder"], cache=tmp_path / "cache")


def test_pickle_with_foreign_objects_is_refused_not_run(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    w = write_cifar10_batches(tmp_path / "src")
    (w["folder"] / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(CifarDataError, match="refusing to load"):
        load("cifar10", w["folder"], cache=tmp_path / "cache")
    assert not (tmp_path / "pwned").exists()


def test_wrong_data_shape_and_label_range(tmp_path):
    w = write_cifar10_batches(tmp_path / "src")
    write_pickle(w["folder"] / "data_batch_1", {b"labels": [0, 1], b"data": np.zeros((2, 100), np.uint8)})
    with pytest.raises(CifarDataError, match=r"must be uint8 of shape \(N, 3072\), got uint8 \(2, 100\)"):
        load("cifar10", w["folder"], cache=tmp_path / "c1")
    write_pickle(w["folder"] / "data_batch_1", {b"labels": [0, 10], b"data": to_rows(random_images(2, 0))})
    with pytest.raises(CifarDataError, match=r"labels must lie in \[0, 10\) for cifar10, found \[0, 10\]"):
        load("cifar10", w["folder"], cache=tmp_path / "c2")


def test_dataset_mismatch_suggests_the_right_flag(tmp_path):
    write_cifar10_batches(tmp_path / "src")
    with pytest.raises(CifarDataError, match="holds cifar-10-batches-py but --dataset is cifar100"):
        load("cifar100", tmp_path / "src", cache=tmp_path / "cache")


def test_coarse_labels_need_cifar100_batches(tmp_path):
    write_image_folder(tmp_path / "tree", per_class=1)
    with pytest.raises(CifarDataError):  # 10 class folders are not CIFAR-100
        load("cifar100", tmp_path / "tree", cache=tmp_path / "cache")


def test_download_without_torchvision_explains_the_manual_route(tmp_path, monkeypatch):
    real = data_mod.importlib.import_module

    def no_torchvision(name, *a, **k):
        if name.startswith("torchvision"):
            raise ImportError("No module named 'torchvision'")
        return real(name, *a, **k)

    monkeypatch.setattr(data_mod.importlib, "import_module", no_torchvision)
    with pytest.raises(CifarDataError, match=r"needs torchvision.*cifar-10-python\.tar\.gz by hand"):
        download_cifar("cifar10", tmp_path)
    assert not any(tmp_path.iterdir())


# --- cache ------------------------------------------------------------------------------------


def test_cache_is_used_then_invalidated_by_a_changed_source(tmp_path, monkeypatch):
    w = write_cifar10_batches(tmp_path / "src")
    cache = tmp_path / "cache"
    first = load("cifar10", w["folder"], cache=cache)
    files = list(cache.glob("cifar10-*.npz"))
    assert len(files) == 1 and first.cache_file == str(files[0])

    calls = []
    original = data_mod._decode_source
    monkeypatch.setattr(data_mod, "_decode_source", lambda *a: calls.append(a) or original(*a))
    again = load("cifar10", w["folder"], cache=cache)
    assert calls == [] and again.fingerprint == first.fingerprint
    np.testing.assert_array_equal(again.train_x, first.train_x)

    x = random_images(6, 77)  # new content in one batch, new modification time
    write_pickle(w["folder"] / "data_batch_4", {b"labels": [1] * 6, b"data": to_rows(x)})
    st = (w["folder"] / "data_batch_4").stat()
    os.utime(w["folder"] / "data_batch_4", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed = load("cifar10", w["folder"], cache=cache)
    assert len(calls) == 1 and changed.fingerprint != first.fingerprint
    np.testing.assert_array_equal(changed.train_x[18:24], x)


def test_damaged_cache_is_rebuilt(tmp_path):
    w = write_cifar10_batches(tmp_path / "src")
    cache = tmp_path / "cache"
    first = load("cifar10", w["folder"], cache=cache)
    cache_file = next(cache.glob("*.npz"))
    cache_file.write_bytes(b"not a zip file")
    again = load("cifar10", w["folder"], cache=cache)
    np.testing.assert_array_equal(again.train_x, first.train_x)
    assert cache_file.stat().st_size > 1000


# --- balanced subsets ---------------------------------------------------------------------------


def test_balanced_subset_counts_and_seeds():
    y = np.random.default_rng(7).permutation(np.repeat(np.arange(10), 5000))  # CIFAR-10's training labels
    idx = balanced_subset(y, 5003, 10, seed=0, name="train")
    counts = np.bincount(y[idx], minlength=10)
    assert counts.sum() == 5003 and counts.min() == 500 and counts.max() == 501 and (counts == 501).sum() == 3
    assert len(np.unique(idx)) == 5003 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, balanced_subset(y, 5003, 10, seed=0, name="train"))
    other = balanced_subset(y, 5003, 10, seed=1, name="train")
    assert len(np.intersect1d(idx, other)) < 1000  # about 10 % overlap expected between seeds
    assert len(balanced_subset(y, 0, 10, seed=0)) == len(y)


def test_balanced_subset_refuses_short_classes():
    y = np.array([0] * 10 + [1] * 2)
    with pytest.raises(CifarDataError, match="class 1 has 2 images, a balanced subset needs 4"):
        balanced_subset(y, 8, 2, seed=0)


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=5, max_value=40), min_size=2, max_size=12),
    frac=st.floats(min_value=0.05, max_value=0.95),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_balanced_subset_property(counts, frac, seed):
    y = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(seed).shuffle(y)
    K = len(counts)
    n = max(K, min(int(frac * len(y)), K * min(counts)))
    idx = balanced_subset(y, n, K, seed)
    got = np.bincount(y[idx], minlength=K)
    assert got.sum() == n and got.max() - got.min() <= 1 and len(set(idx.tolist())) == n
