"""Shared helpers for the benchmarks: timing with warm-up (CUDA events on a GPU), reports."""

from __future__ import annotations

import json
import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(
    fn: Callable[[], Any], device: torch.device, repeats: int = 5, warmup: int = 2
) -> dict[str, float]:
    """Median and spread of ``fn()``'s wall time in seconds, after ``warmup`` untimed calls.

    On CUDA the time is measured with CUDA events around each call; on a CPU the process's CPU
    seconds are reported too (``cpu_median``, ``cpu_min``).
    """
    for _ in range(warmup):
        fn()
    sync(device)
    times, cpu = [], []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end) / 1000)
        else:
            t, c = time.perf_counter(), time.process_time()
            fn()
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    out = {"median": statistics.median(times), "min": min(times), "max": max(times), "repeats": repeats}
    if cpu:  # this process's CPU seconds, all threads: with one thread on a loaded machine, about
        # what the call takes on a core of its own
        out.update(cpu_median=statistics.median(cpu), cpu_min=min(cpu))
    return out


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine(device: torch.device) -> dict[str, Any]:
    info = {
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def write_report(path: str | Path, report: dict[str, Any]) -> None:
    from multiview.files import write_json

    write_json(path, report)


def print_json(report: dict[str, Any]) -> None:
    print(json.dumps(report, indent=1, default=str))
