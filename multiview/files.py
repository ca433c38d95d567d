"""Files written so that a crash never leaves half of one: atomic writes, JSON, content digests.

:func:`atomic_write` writes to a temporary file in the target's folder, flushes it to the disk
(``fsync``) and renames it over the target (``os.replace``): a reader sees the old file or the new
one, never a part. Everything the project writes to keep (results, checkpoints, configs, sweep
tables, decoded data caches) goes through it. This module imports no torch.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Create or replace ``path`` with what ``write(file)`` writes to a binary file object."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def to_jsonable(obj: Any) -> Any:
    """Tensors and arrays to nested lists, NaN and ±inf to null, tuples to lists, recursively."""
    if hasattr(obj, "detach"):  # a torch tensor
        obj = obj.detach().cpu()
    if hasattr(obj, "tolist"):  # a tensor, a numpy array or a numpy scalar
        return to_jsonable(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj


def write_json(path: str | Path, obj: Any) -> None:
    """``obj`` as indented JSON (:func:`to_jsonable` first), atomically."""
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=1, allow_nan=False) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def digest(obj: Any, compact: bool = True) -> str:
    """A stable 16-hex-digit SHA-256 of ``obj`` as JSON with sorted keys (values JSON does not know
    are written as text). ``compact`` drops the spaces after separators; the stage checkpoints of
    both protocols were keyed with them, and keep that spelling so that old checkpoints resume."""
    separators = (",", ":") if compact else (", ", ": ")
    text = json.dumps(obj, sort_keys=True, separators=separators, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
