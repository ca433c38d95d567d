"""Helpers for the CIFAR-mode tests: small data sets written in every layout users have."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

REAL_DATA = Path(__file__).resolve().parents[2].parent / "shared/data/cifar10-jpeg.tar.gz"
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def random_images(n: int, seed: int) -> np.ndarray:
    """(n, 32, 32, 3) uint8."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def to_rows(x: np.ndarray) -> np.ndarray:
    """(n, 32, 32, 3) HWC → (n, 3072) rows in CIFAR's channel-major order."""
    return x.transpose(0, 3, 1, 2).reshape(len(x), -1)


def write_pickle(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=2))


def write_cifar10_batches(
    root: Path, per_batch: int = 6, n_test: int = 10, seed: int = 0, balanced: bool = False
) -> dict:
    """torchvision's ``cifar-10-batches-py`` layout under ``root``; returns the arrays written.
    Training labels are random, or with ``balanced`` every class equally often in each batch
    (``per_batch`` a multiple of 10); test labels cycle through the classes."""
    folder = root / "cifar-10-batches-py"
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for b in range(1, 6):
        x = random_images(per_batch, seed * 100 + b)
        y = (rng.permutation(per_batch) % 10 if balanced else rng.integers(0, 10, per_batch)).tolist()
        write_pickle(
            folder / f"data_batch_{b}", {b"batch_label": b"training batch", b"labels": y, b"data": to_rows(x)}
        )
        xs.append(x)
        ys += y
    xt = random_images(n_test, seed * 100 + 9)
    yt = [i % 10 for i in range(n_test)]
    write_pickle(
        folder / "test_batch", {b"batch_label": b"testing batch", b"labels": yt, b"data": to_rows(xt)}
    )
    write_pickle(
        folder / "batches.meta", {b"label_names": [n.encode() for n in CIFAR10_NAMES], b"num_vis": 3072}
    )
    return {
        "folder": folder,
        "train_x": np.concatenate(xs),
        "train_y": np.array(ys),
        "test_x": xt,
        "test_y": np.array(yt),
    }


def write_cifar100(root: Path, n_train: int = 20, n_test: int = 8, seed: int = 1) -> dict:
    """torchvision's ``cifar-100-python`` layout (train, test, meta with fine and coarse labels)."""
    folder = root / "cifar-100-python"
    rng = np.random.default_rng(seed)
    out = {"folder": folder}
    for split, n in (("train", n_train), ("test", n_test)):
        x = random_images(n, seed * 10 + len(split))
        fine = rng.integers(0, 100, n)
        coarse = fine // 5
        write_pickle(
            folder / split,
            {
                b"data": to_rows(x),
                b"fine_labels": fine.tolist(),
                b"coarse_labels": coarse.tolist(),
                b"filenames": [],
            },
        )
        out.update({f"{split}_x": x, f"{split}_fine": fine, f"{split}_coarse": coarse})
    write_pickle(
        folder / "meta",
        {
            b"fine_label_names": [f"fine{i:02d}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i:02d}".encode() for i in range(20)],
        },
    )
    return out


def write_image_folder(root: Path, per_class: int = 2, fmt: str = "png", seed: int = 2) -> dict:
    """An ImageFolder tree root/{train,test}/<class>/NNNN.<fmt> for the 10 CIFAR-10 classes."""
    out = {"root": root}
    for split, n in (("train", per_class), ("test", 1)):
        xs, ys = [], []
        for c, name in enumerate(CIFAR10_NAMES):
            x = random_images(n, seed * 1000 + c * 10 + len(split))
            for i in range(n):
                path = root / split / name / f"{i:04d}.{fmt}"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(x[i]).save(path)
            xs.append(x)
            ys += [c] * n
        out[f"{split}_x"], out[f"{split}_y"] = np.concatenate(xs), np.array(ys)
    return out


def tar_folder(src: Path, dest: Path, arcname: str) -> Path:
    with tarfile.open(dest, "w:gz") as tf:
        tf.add(src, arcname=arcname)
    return dest


def jpeg_bytes(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, format="JPEG")
    return buf.getvalue()


def stand_in_arrays(n_train: int = 120, n_test: int = 40, seed: int = 0):
    """Random images of the ten CIFAR-10 classes in turn, as :class:`CifarArrays` in memory."""
    from multiview.cifar.data import CifarArrays

    return CifarArrays(
        train_x=random_images(n_train, seed),
        train_y=np.arange(n_train) % 10,
        test_x=random_images(n_test, seed + 1),
        test_y=np.arange(n_test) % 10,
        classes=list(CIFAR10_NAMES),
        source="random stand-in images",
        layout="arrays",
        fingerprint=f"random-{seed}",
    )
