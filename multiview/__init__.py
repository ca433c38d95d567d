"""multiview: a simulator of Allen-Zhu & Li's multi-view theory of ensembles and distillation.

Importing the package asks PyTorch's CPU allocator to back large tensors with transparent huge
pages (``THP_MEM_ALLOC_ENABLE=1``, unless the environment already says otherwise): the training
step's (units × patches) arrays are allocated every step, and with 4 KiB pages the kernel spends
as much time zeroing fresh pages as the step spends computing (``docs/performance.md``). It has to
be set before torch allocates its first large tensor, hence here.
"""

import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
