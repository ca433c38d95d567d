"""Files written so that a crash never leaves half of one: atomic writes, JSON, content digests.

:func:`atomic_write` writes to a temporary file in the target's folder, flushes it to the disk
(``fsync``) and renames it over the target (``os.replace``): a reader sees the old file or the new
one, never a part. The file gets the ordinary mode of a new file (0666 less the umask: 0644 under
the usual umask 022), not the 0600 of a temporary file. Everything the project writes to keep
(results, checkpoints, configs, sweep tables, decoded data caches) goes through it.

Reading: :func:`read_json` names the file in every error (:class:`FileFormatError`), and
:func:`read_results` also checks that the file is a run's ``results.json``. This module imports no
torch.
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

RESULTS_SCHEMA = 1
"""The version of ``results.json`` this code writes and reads (``schema``)."""


class FileFormatError(ValueError):
    """A file is not what it should be (not UTF-8, not JSON, not a run's results); the message
    names the file and what was expected."""


def umask() -> int:
    """The process's file-creation mask: from ``/proc/self/status`` on Linux, else by setting and
    restoring it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Create or replace ``path`` with what ``write(file)`` writes to a binary file object."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~umask())
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
    """The JSON content of ``path``; a file that is not UTF-8 JSON is a :class:`FileFormatError`
    naming it (a missing or unreadable file is the ``OSError`` of opening it)."""
    data = Path(path).read_bytes()
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise FileFormatError(f"{path} is not UTF-8 text, so not a JSON file") from None
    except json.JSONDecodeError as exc:
        what = "is empty" if not data.strip() else f"is not valid JSON ({exc})"
        raise FileFormatError(f"{path} {what}") from None


def read_results(path: str | Path) -> dict[str, Any]:
    """A run's results: ``path`` is its ``results.json`` or the folder that holds it. Anything else
    (no such file, not JSON, another program's JSON, a newer schema) is a :class:`FileFormatError`
    that names the file and says what was expected."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    expected = "a run folder written by multiview simulate or multiview cifar (or its results.json)"
    if not p.exists():
        raise FileFormatError(f"{p} does not exist: expected {expected}")
    try:
        results = read_json(p)
    except OSError as exc:
        raise FileFormatError(f"{p} cannot be read ({exc.strerror}): expected {expected}") from None
    if not isinstance(results, dict):
        raise FileFormatError(
            f"{p} holds a JSON {type(results).__name__}, not the object of a results.json: "
            f"expected {expected}"
        )
    schema = results.get("schema", RESULTS_SCHEMA)
    if isinstance(schema, int) and not isinstance(schema, bool) and schema > RESULTS_SCHEMA:
        raise FileFormatError(
            f"{p} has schema {schema}, newer than this version of multiview reads ({RESULTS_SCHEMA}): "
            "update multiview"
        )
    if schema != RESULTS_SCHEMA or not isinstance(results.get("config"), dict):
        what = "no 'config' table" if not isinstance(results.get("config"), dict) else f"schema {schema!r}"
        raise FileFormatError(f"{p} is not a results.json of multiview ({what}): expected {expected}")
    return results


def digest(obj: Any, compact: bool = True) -> str:
    """A stable 16-hex-digit SHA-256 of ``obj`` as JSON with sorted keys (values JSON does not know
    are written as text). ``compact`` drops the spaces after separators; the stage checkpoints of
    both protocols were keyed with them, and keep that spelling so that old checkpoints resume."""
    separators = (",", ":") if compact else (", ", ": ")
    text = json.dumps(obj, sort_keys=True, separators=separators, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
