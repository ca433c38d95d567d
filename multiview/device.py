"""Which device a run uses: the names a user may give (``auto``, ``cpu``, ``cuda``, ``cuda:N``)
and the device they resolve to. torch is imported on use, so checking a name stays cheap."""

from __future__ import annotations

from typing import TYPE_CHECKING

from multiview.settings import ConfigError

if TYPE_CHECKING:
    import torch

DEVICE_NAMES = "auto, cpu, cuda or cuda:N"


def check_device(key: str, name: str) -> None:
    """Raise :class:`ConfigError` unless ``name`` is auto, cpu, cuda or cuda:N (no torch needed)."""
    kind = name.split(":")[0]
    if kind not in ("auto", "cpu", "cuda") or (":" in name and (kind != "cuda" or not name[5:].isdigit())):
        raise ConfigError(f"{key} = {name!r}: must be {DEVICE_NAMES}")


def resolve_device(name: str, key: str = "--device") -> torch.device:
    """``auto``: CUDA when present, else the CPU; any other name as torch reads it. A name torch
    does not know, or CUDA where there is none, is a :class:`ConfigError` naming ``key``."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{key} {name!r}: use {DEVICE_NAMES}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key} {name}: CUDA is not available on this machine")
    return device
