"""multiview: a simulator of Allen-Zhu & Li's multi-view theory of ensembles and distillation.

Importing the package sets how large CPU tensors get their memory: the training step's (units ×
patches) arrays are allocated every step, and memory fresh from the kernel costs a page fault and
a zeroed page for every 4 KiB, as much time as the step spends computing (``docs/performance.md``).
So PyTorch's CPU allocator backs large tensors with transparent huge pages
(``THP_MEM_ALLOC_ENABLE=1``, unless the environment already says otherwise), and under glibc
freed memory stays with the process to be handed out again (``mallopt``: large blocks come from
the heap, which is not trimmed; set ``MULTIVIEW_KEEP_FREED_MEMORY=0`` to keep glibc's defaults).
Both have to be set before torch allocates its first large tensor, hence here.

The Python API (:mod:`multiview.api`) is imported on first use, so ``import multiview`` loads
neither torch nor pandas::

    import multiview

    res = multiview.simulate(preset="smoke", mu=0.2)   # Results: .results, .tidy, .path
    df = multiview.load("runs/sweeps/mu_rho")           # a tidy DataFrame of a run or a sweep
    multiview.summarize(df, by=["data.mu", "method"])   # means with 95 % intervals over seeds
"""

import ctypes
import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")


def _keep_freed_memory() -> None:
    """Ask glibc to serve blocks of any size from the heap and never to trim it (no-op elsewhere)."""
    if os.environ.get("MULTIVIEW_KEEP_FREED_MEMORY", "1") == "0":
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 1 << 30)
    libc.mallopt(m_trim_threshold, (1 << 31) - 1)


_keep_freed_memory()

from typing import TYPE_CHECKING, Any  # noqa: E402  (after the allocator setting above)

if TYPE_CHECKING:
    from multiview.api import Results, load, simulate
    from multiview.tidy import summarize

__all__ = ["Results", "__version__", "load", "simulate", "summarize"]


def __getattr__(name: str) -> Any:
    if name in ("Results", "load", "simulate"):
        from multiview import api

        return getattr(api, name)
    if name == "summarize":
        from multiview.tidy import summarize

        return summarize
    if name == "__version__":
        from multiview.provenance import package_version

        return package_version()
    raise AttributeError(f"module 'multiview' has no attribute {name!r}")
