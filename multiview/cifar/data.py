"""Reading CIFAR-10 / CIFAR-100 from the layouts users have, once, into cached uint8 arrays.

Layouts (``path`` may name any of them; a folder that holds one of the first two works too):

* torchvision's pickled batches: ``cifar-10-batches-py/`` (``data_batch_1`` … ``data_batch_5``,
  ``test_batch``, ``batches.meta``) or ``cifar-100-python/`` (``train``, ``test``, ``meta``, fine
  and coarse labels);
* an ImageFolder tree: ``train/<class>/*.jpg|png`` and ``test/<class>/*``, classes sorted by name
  (for CIFAR-10 and CIFAR-100 that is the data sets' own label order);
* a ``.tar.gz`` (or ``.tar``, ``.tgz``) of either, such as torchvision's ``cifar-10-python.tar.gz``.

Decoded arrays are cached in ``cache_dir`` as an ``.npz`` keyed by the source's path, size and
modification time; a damaged cache is rebuilt. Every array is verified (shape (N, 32, 32, 3)
uint8, labels in range) and every failure names the file and what was expected there.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import pickle
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from multiview.cifar.config import CIFAR100_COARSE, DATASETS, LAYOUT_HELP
from multiview.cifar.pipeline import channel_stats
from multiview.files import atomic_write
from multiview.seeding import derive_seed

CACHE_VERSION = 2
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")
CIFAR10_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
CIFAR100_FILES = ("train", "test")
FOLDER = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


class CifarDataError(RuntimeError):
    """The data set is missing, damaged or not what was asked for; the message says what was
    expected where."""


@dataclass
class CifarArrays:
    """A decoded data set. Images (N, 32, 32, 3) uint8 (HWC, RGB); labels (N,) int64; ``mean`` and
    ``std``: per-channel statistics of all training images on the [0, 1] scale."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: list[str]
    source: str
    layout: str
    fingerprint: str
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.25, 0.25, 0.25)
    cache_file: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def summary(self) -> dict:
        return {
            "source": self.source,
            "layout": self.layout,
            "n_train": int(len(self.train_y)),
            "n_test": int(len(self.test_y)),
            "num_classes": self.num_classes,
            "classes": self.classes,
            "fingerprint": self.fingerprint,
            "mean": list(self.mean),
            "std": list(self.std),
            "cache_file": self.cache_file,
        }


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "multiview" / "cifar"


def load_cifar(
    dataset: str,
    path: str | Path,
    labels: str = "fine",
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> CifarArrays:
    """Read ``dataset`` (``cifar10`` / ``cifar100``) from ``path`` in any supported layout.

    The first read decodes and writes ``<cache_dir>/<dataset>-<key>.npz``; later reads of an
    unchanged source load that file. ``labels`` picks CIFAR-100's ``fine`` or ``coarse`` labels.
    """
    if dataset not in DATASETS:
        raise CifarDataError(f"unknown data set {dataset!r}; use one of {', '.join(DATASETS)}")
    src = Path(path).expanduser()
    if not str(path):
        raise CifarDataError(f"no data path given: pass --data PATH ({LAYOUT_HELP})")
    if not src.exists():
        raise CifarDataError(f"{src} does not exist: expected {LAYOUT_HELP}")
    src = src.resolve()
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    cache_file = cache / f"{dataset}-{_source_key(src)}.npz"
    raw = _read_cache(cache_file) if use_cache else None
    if raw is None:
        raw = _decode_source(dataset, src)
        raw["fingerprint"] = _fingerprint(raw)
        _verify(raw, dataset, str(src))
        mean, std = channel_stats(raw["train_x"])
        raw["channel_mean"], raw["channel_std"] = np.asarray(mean), np.asarray(std)
        if use_cache:
            _write_cache(cache_file, raw)
    else:
        _verify(raw, dataset, str(cache_file))
    return _select_labels(raw, dataset, labels, str(src), str(cache_file) if use_cache else "")


def download_cifar(dataset: str, root: str | Path) -> Path:
    """Download with torchvision into ``root`` and return the pickled-batch folder.

    torchvision is imported here, only when asked for; without it (or without a network) the
    error says how to fetch the archive by hand (the ``.tar.gz`` can be passed to ``--data`` as is).
    """
    urls = {
        "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    }
    manual = f"download {urls[dataset]} by hand and pass it (or its unpacked folder) to --data"
    try:
        datasets = importlib.import_module("torchvision.datasets")
    except ImportError:
        raise CifarDataError(f"--download needs torchvision, which is not installed; {manual}") from None
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    cls = datasets.CIFAR10 if dataset == "cifar10" else datasets.CIFAR100
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as exc:  # network failures come in many types
        raise CifarDataError(f"downloading {dataset} into {root} failed ({exc}); {manual}") from None
    return root / FOLDER[dataset]


def balanced_subset(y: np.ndarray, n: int, num_classes: int, seed: int, name: str = "subset") -> np.ndarray:
    """Sorted indices of ``n`` examples, ⌊n/K⌋ per class plus one more for n mod K classes chosen
    by the seed; which examples of a class is seeded too. y (N,) int → (n,) int64."""
    N = len(y)
    if n <= 0 or n >= N:
        return np.arange(N, dtype=np.int64)
    rng = np.random.default_rng(derive_seed(seed, "cifar-subset", name))
    quota = np.full(num_classes, n // num_classes, dtype=np.int64)
    quota[rng.permutation(num_classes)[: n % num_classes]] += 1
    counts = np.bincount(y, minlength=num_classes)
    short = np.nonzero(counts < quota)[0]
    if len(short):
        c = int(short[0])
        raise CifarDataError(
            f"{name} of {n} images: class {c} has {counts[c]} images, a balanced subset needs {quota[c]}"
        )
    order = np.lexsort((rng.random(N), y))
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(N, dtype=np.int64)
    rank[order] = np.arange(N) - start[y[order]]
    return np.nonzero(rank < quota[y])[0].astype(np.int64)


# --------------------------------------------------------------------------------------------
# Layout detection and decoding
# --------------------------------------------------------------------------------------------


def _decode_source(dataset: str, src: Path) -> dict:
    if src.is_file():
        if not src.name.lower().endswith(ARCHIVE_SUFFIXES) and not tarfile.is_tarfile(src):
            raise CifarDataError(f"{src} is a file but not a tar archive: expected {LAYOUT_HELP}")
        return _read_archive(dataset, src)
    folder = _find_batches_folder(dataset, src)
    if folder is not None:
        return _read_batches(dataset, lambda name: _read_file(folder / name), str(folder))
    if (src / "train").is_dir() and (src / "test").is_dir():
        return _read_image_folder(src)
    other = "cifar100" if dataset == "cifar10" else "cifar10"
    if _find_batches_folder(other, src) is not None:
        raise CifarDataError(
            f"{src} holds {FOLDER[other]} but --dataset is {dataset}; did you mean --dataset {other}?"
        )
    raise CifarDataError(f"{src}: found no CIFAR data there; expected {LAYOUT_HELP}")


def _find_batches_folder(dataset: str, src: Path) -> Path | None:
    files = CIFAR10_FILES if dataset == "cifar10" else CIFAR100_FILES
    for folder in (src, src / FOLDER[dataset]):
        present = [f for f in files if (folder / f).is_file()]
        if present and (
            dataset == "cifar10" or folder.name == FOLDER[dataset] or (folder / "meta").is_file()
        ):
            return folder
    return None


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CifarDataError(f"{path} is missing") from None


def _read_batches(dataset: str, read: Callable[[str], bytes], where: str) -> dict:
    """torchvision's pickled batches; ``read(name)`` returns a file's bytes or raises."""
    if dataset == "cifar10":
        parts = {"train": CIFAR10_FILES[:5], "test": CIFAR10_FILES[5:]}
        label_keys, meta_name, names_key = {"fine": b"labels"}, "batches.meta", b"label_names"
    else:
        parts = {"train": ("train",), "test": ("test",)}
        label_keys, meta_name, names_key = (
            {"fine": b"fine_labels", "coarse": b"coarse_labels"},
            "meta",
            b"fine_label_names",
        )
    out: dict = {"layout": "batches"}
    for split, names in parts.items():
        xs, ys = [], {k: [] for k in label_keys}
        for name in names:
            try:
                blob = read(name)
            except CifarDataError:
                raise CifarDataError(
                    f"{where}/{name} is missing: a {FOLDER[dataset]} folder holds "
                    + ", ".join(_all_files(dataset))
                ) from None
            d = _unpickle(blob, f"{where}/{name}")
            x, labels = _batch_arrays(d, label_keys, f"{where}/{name}")
            xs.append(x)
            for k in label_keys:
                ys[k].append(labels[k])
        out[f"{split}_x"] = np.concatenate(xs)
        for k in label_keys:
            out[f"{split}_y_{k}"] = np.concatenate(ys[k]).astype(np.int64)
    out["classes_fine"] = _class_names(read, meta_name, names_key, where, DATASETS[dataset])
    if dataset == "cifar100":
        out["classes_coarse"] = _class_names(read, meta_name, b"coarse_label_names", where, CIFAR100_COARSE)
    return out


def _all_files(dataset: str) -> tuple[str, ...]:
    return CIFAR10_FILES + ("batches.meta",) if dataset == "cifar10" else CIFAR100_FILES + ("meta",)


def _batch_arrays(
    d: object, label_keys: dict[str, bytes], where: str
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    if not isinstance(d, dict) or b"data" not in d:
        raise CifarDataError(
            f"{where}: expected a pickled dict with b'data' and labels, got {type(d).__name__}"
        )
    data = np.asarray(d[b"data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise CifarDataError(
            f"{where}: b'data' must be uint8 of shape (N, 3072), got {data.dtype} {data.shape}"
        )
    labels = {}
    for k, key in label_keys.items():
        if key not in d:
            raise CifarDataError(f"{where}: the labels {key!r} are missing")
        labels[k] = np.asarray(d[key], dtype=np.int64).reshape(-1)
        if len(labels[k]) != len(data):
            raise CifarDataError(f"{where}: {len(data)} images but {len(labels[k])} labels in {key!r}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _class_names(read: Callable[[str], bytes], meta: str, key: bytes, where: str, k: int) -> list[str]:
    try:
        d = _unpickle(read(meta), f"{where}/{meta}")
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in d[key]]
    except (CifarDataError, KeyError, TypeError):
        return [str(i) for i in range(k)]
    return names if len(names) == k else [str(i) for i in range(k)]


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR batch format only: dicts, lists, numpy arrays. Anything else is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module.startswith("numpy") and module.endswith("multiarray"):
            for mod in ("numpy._core.multiarray", "numpy.core.multiarray"):
                try:
                    return getattr(importlib.import_module(mod), name)
                except (ImportError, AttributeError):
                    continue
        return super().find_class(module, name)


def _unpickle(blob: bytes, where: str) -> object:
    try:
        return _BatchUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except Exception as exc:
        raise CifarDataError(
            f"{where}: cannot read it as a pickled CIFAR batch ({type(exc).__name__}: {exc}); "
            "the file looks damaged"
        ) from None


def _read_image_folder(root: Path) -> dict:
    out: dict = {"layout": "imagefolder"}
    classes: list[str] | None = None
    for split in ("train", "test"):
        folder = root / split
        names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not names:
            raise CifarDataError(f"{folder} has no class folders: expected {split}/<class>/*.jpg")
        if classes is None:
            classes = names
        elif names != classes:
            raise CifarDataError(f"{root}: train/ and test/ have different class folders")
        files, labels = [], []
        for c, name in enumerate(names):
            found = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            files += found
            labels += [c] * len(found)
        if not files:
            raise CifarDataError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        out[f"{split}_x"] = _decode_images([(str(p), p.read_bytes) for p in files])
        out[f"{split}_y_fine"] = np.asarray(labels, dtype=np.int64)
    out["classes_fine"] = classes
    return out


def _read_archive(dataset: str, src: Path) -> dict:
    """One streaming pass over a tar archive: pickled batches or an ImageFolder tree inside."""
    batches: dict[str, bytes] = {}
    images: dict[str, list[tuple[str, str, bytes]]] = {"train": [], "test": []}
    wanted = set(_all_files(dataset))
    try:
        with tarfile.open(src, "r:*") as tf:
            for member in tf:
                if not member.isfile():
                    continue
                p = PurePosixPath(member.name)
                if p.name.startswith("."):
                    continue
                if p.name in wanted and (dataset == "cifar10" or p.parent.name == FOLDER[dataset]):
                    batches[p.name] = _extract(tf, member)
                elif len(p.parts) >= 3 and p.parts[-3] in images and p.suffix.lower() in IMAGE_SUFFIXES:
                    images[p.parts[-3]].append((p.parts[-2], member.name, _extract(tf, member)))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise CifarDataError(
            f"{src}: cannot read the archive ({type(exc).__name__}: {exc}); it looks damaged or truncated. "
            f"Expected {LAYOUT_HELP}"
        ) from None
    if any(name in batches for name in (CIFAR10_FILES if dataset == "cifar10" else CIFAR100_FILES)):

        def read(name: str) -> bytes:
            if name not in batches:
                raise CifarDataError(f"{src}: {name} is missing")
            return batches[name]

        out = _read_batches(dataset, read, f"{src}:{FOLDER[dataset]}")
        out["layout"] = "batches-archive"
        return out
    if images["train"] and images["test"]:
        return _images_from_members(src, images)
    raise CifarDataError(f"{src}: the archive holds no {dataset} data; expected {LAYOUT_HELP}")


def _extract(tf: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    fh = tf.extractfile(member)
    if fh is None:
        raise CifarDataError(f"cannot extract {member.name}")
    return fh.read()


def _images_from_members(src: Path, images: dict[str, list[tuple[str, str, bytes]]]) -> dict:
    classes = sorted({c for c, _, _ in images["train"]})
    if sorted({c for c, _, _ in images["test"]}) != classes:
        raise CifarDataError(f"{src}: train/ and test/ have different class folders")
    index = {c: i for i, c in enumerate(classes)}
    out: dict = {"layout": "imagefolder-archive", "classes_fine": classes}
    for split, items in images.items():
        items.sort(key=lambda t: (index[t[0]], t[1]))
        out[f"{split}_x"] = _decode_images([(f"{src}:{name}", _const(blob)) for _, name, blob in items])
        out[f"{split}_y_fine"] = np.asarray([index[c] for c, _, _ in items], dtype=np.int64)
    return out


def _const(blob: bytes) -> Callable[[], bytes]:
    return lambda: blob


def _decode_images(items: list[tuple[str, Callable[[], bytes]]]) -> np.ndarray:
    """Decode image files (name, bytes getter) to (N, 32, 32, 3) uint8. Runs once per source (the
    result is cached); about 7 s for CIFAR-10's 60,000 JPEGs on one core."""
    out = np.empty((len(items), 32, 32, 3), dtype=np.uint8)
    for i, (name, get) in enumerate(items):
        out[i] = _decode_one(name, get)
    return out


def _decode_one(name: str, get: Callable[[], bytes]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(get())) as img:
            img.load()
            if img.size != (32, 32):
                raise CifarDataError(f"{name}: expected a 32×32 image, got {img.size[0]}×{img.size[1]}")
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CifarDataError(f"{name}: cannot decode the image ({exc}); the file looks damaged") from None


# --------------------------------------------------------------------------------------------
# Verification, labels, cache
# --------------------------------------------------------------------------------------------


def _verify(raw: dict, dataset: str, where: str) -> None:
    k = {"fine": DATASETS[dataset], "coarse": CIFAR100_COARSE}
    for split in ("train", "test"):
        x = raw.get(f"{split}_x")
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3):
            shape = getattr(x, "shape", None)
            raise CifarDataError(
                f"{where}: {split} images must be uint8 of shape (N, 32, 32, 3), got {shape}"
            )
        if len(x) == 0:
            raise CifarDataError(f"{where}: no {split} images")
        for kind, n_classes in k.items():
            y = raw.get(f"{split}_y_{kind}")
            if y is None:
                continue
            if y.shape != (len(x),):
                raise CifarDataError(f"{where}: {len(x)} {split} images but labels of shape {y.shape}")
            if len(y) and (y.min() < 0 or y.max() >= n_classes):
                raise CifarDataError(
                    f"{where}: {split} {kind} labels must lie in [0, {n_classes}) for {dataset}, "
                    f"found [{y.min()}, {y.max()}]"
                )
    names = raw.get("classes_fine")
    if names is not None and len(names) != DATASETS[dataset]:
        raise CifarDataError(
            f"{where}: found {len(names)} classes, {dataset} has {DATASETS[dataset]} "
            f"({', '.join(map(str, list(names)[:12]))}{' …' if len(names) > 12 else ''})"
        )


def _select_labels(raw: dict, dataset: str, labels: str, source: str, cache_file: str) -> CifarArrays:
    key = labels if dataset == "cifar100" else "fine"
    if f"train_y_{key}" not in raw:
        raise CifarDataError(
            f"{source}: this layout has no {labels} labels (only torchvision's cifar-100-python has)"
        )
    return CifarArrays(
        train_x=raw["train_x"],
        train_y=raw[f"train_y_{key}"],
        test_x=raw["test_x"],
        test_y=raw[f"test_y_{key}"],
        classes=[str(c) for c in raw[f"classes_{key}"]],
        source=source,
        layout=str(raw["layout"]),
        fingerprint=str(raw["fingerprint"]) + ("" if key == "fine" else "-coarse"),
        mean=tuple(float(v) for v in raw["channel_mean"]),
        std=tuple(float(v) for v in raw["channel_std"]),
        cache_file=cache_file,
    )


def _source_key(src: Path) -> str:
    """Path, total size and newest modification time of the source (every file of a folder)."""
    if src.is_file():
        st = src.stat()
        parts: Iterable[object] = (str(src), st.st_size, st.st_mtime_ns)
    else:
        size = mtime = count = 0
        for dirpath, _, files in os.walk(src):
            for f in files:
                st = os.stat(os.path.join(dirpath, f))
                size, mtime, count = size + st.st_size, max(mtime, st.st_mtime_ns), count + 1
        parts = (str(src), size, mtime, count)
    text = "|".join(map(str, [CACHE_VERSION, *parts]))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _fingerprint(raw: dict) -> str:
    h = hashlib.sha256()
    for key in sorted(k for k in raw if k.endswith("_x") or "_y_" in k):
        h.update(key.encode())
        h.update(np.ascontiguousarray(raw[key]).tobytes())
    return h.hexdigest()[:16]


def _read_cache(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            raw = {k: z[k] for k in z.files if k != "meta"}
            meta = json.loads(str(z["meta"]))
        if meta.get("version") != CACHE_VERSION:
            return None
        raw.update(layout=meta["layout"], fingerprint=meta["fingerprint"])
        for key in ("classes_fine", "classes_coarse"):
            if key in raw:
                raw[key] = [str(c) for c in raw[key]]
        return raw
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None  # a damaged cache is rebuilt from the source


def _write_cache(path: Path, raw: dict) -> None:
    arrays = {k: v for k, v in raw.items() if isinstance(v, np.ndarray)}
    for key in ("classes_fine", "classes_coarse"):
        if key in raw:
            arrays[key] = np.asarray(list(raw[key]), dtype=str)
    meta = {"version": CACHE_VERSION, "layout": raw["layout"], "fingerprint": raw["fingerprint"]}
    arrays["meta"] = np.asarray(json.dumps(meta))
    try:
        atomic_write(path, lambda fh: np.savez(fh, **arrays))
    except OSError:
        pass  # a cache that cannot be written (read-only, full) only costs a second decode next time
