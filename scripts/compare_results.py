"""Compare two runs number by number: every value of their results.json, and their stage checkpoints.

    python scripts/compare_results.py RUN_A RUN_B [--rtol 0]

RUN_A and RUN_B are run folders (``multiview simulate --out``, ``multiview cifar --out``) or
``results.json`` files. Every leaf of the two JSON trees is compared (numbers, strings, flags,
nulls, keys present on one side only), except what depends on the machine and the clock: the
``timing`` table, any key naming seconds or throughput, and the software and host fields of
``environment``. Given two folders, their checkpoints are compared too (``stages/*.pt`` of
``multiview simulate``, ``models/<stage>/*.pt`` of ``multiview cifar``): the key a checkpoint must
match to be resumed (the stage or model hash), and everything else it holds, tensors included.

Prints one line per difference and a summary; exits 0 when the runs agree, 1 otherwise. Numbers
are compared exactly unless ``--rtol`` allows a relative tolerance.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

MACHINE_FIELDS = {
    "multiview", "source", "python", "torch", "numpy", "platform", "threads", "gpu", "cuda", "jobs",
    "threads_per_job",
}  # fmt: skip
"""The environment's software and host fields (:func:`multiview.provenance.host_environment`) and
the processes and threads a run used."""
CLOCK_WORDS = ("seconds", "per_second", "timing")


def ignored(path: tuple[str, ...]) -> bool:
    """Timings, throughputs, and the environment's software and host fields."""
    if any(word in part for part in path for word in CLOCK_WORDS):
        return True
    return len(path) == 2 and path[0] == "environment" and path[1] in MACHINE_FIELDS


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def same_number(a: float, b: float, rtol: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    return a == b or (rtol > 0 and math.isclose(a, b, rel_tol=rtol))


def differences(a: Any, b: Any, rtol: float = 0.0, path: tuple[str, ...] = ()) -> tuple[list[str], int]:
    """The differing leaves of two JSON trees as lines ``path: a != b``, and how many leaves were
    compared."""
    if ignored(path):
        return [], 0
    where = ".".join(path) or "(top)"
    if isinstance(a, dict) and isinstance(b, dict):
        out, count = [], 0
        for key in [*a, *(k for k in b if k not in a)]:
            if key not in a or key not in b:
                if not ignored((*path, str(key))):
                    side = "A" if key in a else "B"
                    out.append(f"{where}.{key}: only in {side}")
                    count += 1
                continue
            diff, n = differences(a[key], b[key], rtol, (*path, str(key)))
            out += diff
            count += n
        return out, count
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items != {len(b)} items"], 1
        out, count = [], 0
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            diff, n = differences(x, y, rtol, (*path, str(i)))
            out += diff
            count += n
        return out, count
    if _is_number(a) and _is_number(b):
        return ([] if same_number(float(a), float(b), rtol) else [f"{where}: {a!r} != {b!r}"]), 1
    return ([] if a == b and type(a) is type(b) else [f"{where}: {a!r} != {b!r}"]), 1


def tensor_differences(a: Any, b: Any, rtol: float, path: tuple[str, ...]) -> tuple[list[str], int]:
    """The differing tensors of two checkpoints' tensor dicts, and how many numbers were compared."""
    import torch

    if ignored(path):
        return [], 0
    where = ".".join(path)
    if isinstance(a, dict) and isinstance(b, dict):
        out, count = [], 0
        for key in sorted({*a, *b}, key=str):
            if key not in a or key not in b:
                out.append(f"{where}.{key}: only in {'A' if key in a else 'B'}")
                continue
            diff, n = tensor_differences(a[key], b[key], rtol, (*path, str(key)))
            out += diff
            count += n
        return out, count
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape or a.dtype != b.dtype:
            return [f"{where}: {a.dtype} {tuple(a.shape)} != {b.dtype} {tuple(b.shape)}"], 1
        if a.is_floating_point():
            equal = bool(torch.isclose(a, b, rtol=rtol, atol=0.0, equal_nan=True).all())
        else:
            equal = torch.equal(a, b)
        return ([] if equal else [f"{where}: the tensors differ"]), a.numel()
    return differences(a, b, rtol, path)


def checkpoint_differences(a: Path, b: Path, rtol: float) -> tuple[list[str], int]:
    """Compare the checkpoints of two run folders: their keys and everything they hold."""
    from multiview.driver import load_tensors

    patterns = ("stages/*.pt", "models/*/*.pt")
    names = sorted({str(p.relative_to(f)) for f in (a, b) for pattern in patterns for p in f.glob(pattern)})
    out, count = [], 0
    for name in names:
        pa, pb = a / name, b / name
        if not (pa.exists() and pb.exists()):
            out.append(f"{name}: only in {'A' if pa.exists() else 'B'}")
            continue
        sa, sb = load_tensors(pa), load_tensors(pb)
        diff, n = tensor_differences(sa, sb, rtol, (name,))
        out += diff
        count += n
    return out, count


def results_path(path: Path) -> Path:
    return path / "results.json" if path.is_dir() else path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="a run folder or its results.json")
    parser.add_argument("b", type=Path, help="another run folder or results.json")
    parser.add_argument("--rtol", type=float, default=0.0, help="relative tolerance (default: exact)")
    args = parser.parse_args(argv)
    ra = json.loads(results_path(args.a).read_text())
    rb = json.loads(results_path(args.b).read_text())
    diff, count = differences(ra, rb, args.rtol)
    print(f"results.json: {count} values compared, {len(diff)} differ")
    if args.a.is_dir() and args.b.is_dir():
        more, n = checkpoint_differences(args.a, args.b, args.rtol)
        print(f"checkpoints: {n} values compared (keys, JSON parts, tensors), {len(more)} differ")
        diff += more
    for line in diff:
        print("  " + line)
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
