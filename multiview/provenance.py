"""What a run was made with: the multiview version, its source revision, the software and the machine.

:func:`host_environment` is the part of ``environment`` in ``results.json`` that both protocols
share: the version of multiview (from the installed package's metadata), the git commit of the
checkout it runs from and whether that checkout had uncommitted changes (``source``; absent when
multiview is not run from a git checkout), the versions of Python, torch and NumPy, the platform,
torch's CPU threads, and the device (with the GPU's name on CUDA). The protocols add their own
fields (the simulator its dtype, CIFAR its precision). Nothing here imports torch until
:func:`host_environment` is called.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

PACKAGE_DIR = Path(__file__).resolve().parent


@functools.cache
def package_version() -> str:
    """The installed version of multiview (``unknown`` when it runs without being installed)."""
    try:
        return metadata.version("multiview")
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.cache
def source_revision(package_dir: Path = PACKAGE_DIR) -> dict[str, Any] | None:
    """``{"commit": <sha>, "dirty": <bool>}`` of the git checkout whose ``multiview/`` folder is
    ``package_dir`` (dirty: tracked files differ from the commit); None when the package is not
    run from a checkout (an installed copy, even one inside another repository) or git is missing."""
    try:
        top = _git(package_dir, "rev-parse", "--show-toplevel")
        if top is None or Path(top).resolve() != package_dir.resolve().parent:
            return None
        commit = _git(package_dir, "rev-parse", "HEAD")
        status = _git(package_dir, "status", "--porcelain", "--untracked-files=no")
    except OSError:  # no git
        return None
    if commit is None or status is None:
        return None
    return {"commit": commit, "dirty": bool(status)}


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except subprocess.TimeoutExpired:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def host_environment(device: torch.device) -> dict[str, Any]:
    """The software and machine a run used: ``multiview`` (version), ``source`` (commit, dirty;
    only from a git checkout), ``python``, ``torch``, ``numpy``, ``platform``, ``threads`` (torch's
    CPU threads), ``device`` and, on CUDA, ``gpu`` (its name)."""
    import numpy
    import torch

    env: dict[str, Any] = {"multiview": package_version()}
    source = source_revision()
    if source is not None:
        env["source"] = dict(source)
    env.update(
        {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": numpy.__version__,
            "platform": platform.platform(),
            "threads": torch.get_num_threads(),
            "device": str(device),
        }
    )
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env
