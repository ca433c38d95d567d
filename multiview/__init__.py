"""multiview: a simulator of Allen-Zhu & Li's multi-view theory of ensembles and distillation.

Importing the package asks PyTorch's CPU allocator to back large tensors with transparent huge
pages (``THP_MEM_ALLOC_ENABLE=1``, unless the environment already says otherwise): the training
step's (units × patches) arrays are allocated every step, and with 4 KiB pages the kernel spends
as much time zeroing fresh pages as the step spends computing (``docs/performance.md``). It has to
be set before torch allocates its first large tensor, hence here.

The Python API (:mod:`multiview.api`) is imported on first use, so ``import multiview`` loads
neither torch nor pandas::

    import multiview

    res = multiview.simulate(preset="smoke", mu=0.2)   # Results: .results, .tidy, .path
    df = multiview.load("runs/sweeps/mu_rho")           # a tidy DataFrame of a run or a sweep
    multiview.summarize(df, by=["data.mu", "method"])   # means with 95 % intervals over seeds
"""

import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

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
