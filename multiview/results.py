"""Writing results so that nothing computed is lost: atomic files, JSON conversion, stage checkpoints.

``results.json`` (schema below) and ``config.toml`` are written to a run's output folder with
write-to-temporary-then-rename, so a crash never leaves a half-written file. Each protocol stage
also saves its tensors under ``stages/<name>.pt``; ``--resume`` loads those instead of
recomputing them.

Top-level keys of ``results.json``: ``schema``, ``config``, ``config_hash``, ``environment``,
``data`` (data summary), one key per protocol stage (``single``, ``ensemble``, ``training_average``,
``kd``, ``self_kd``, ``ensemble_of_kd``, ``random_features``, ``ntk``), ``views`` (the single
models' learned views), ``bounds`` (the theorem checks) and ``timing`` (seconds per stage).
"""

from __future__ import annotations

import json
import math
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

SCHEMA_VERSION = 1


def host_environment(device: torch.device) -> dict[str, Any]:
    """The software and machine a run used (part of ``environment`` in ``results.json``): torch,
    Python, platform, torch's CPU threads and, on CUDA, the GPU's name."""
    env: dict[str, Any] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def to_jsonable(obj: Any) -> Any:
    """Tensors and arrays to nested lists, NaN/inf to null, tuples to lists, recursively."""
    if isinstance(obj, torch.Tensor):
        return to_jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return to_jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=1, allow_nan=False) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def save_tensors(path: str | Path, payload: dict[str, Any]) -> None:
    """Atomically ``torch.save`` a dict of tensors (moved to the CPU) and plain data."""
    import io

    buf = io.BytesIO()
    torch.save(_to_cpu(payload), buf)
    atomic_write_bytes(path, buf.getvalue())


def load_tensors(path: str | Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj
