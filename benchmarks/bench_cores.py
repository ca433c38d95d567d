"""How a training step uses the cores: one thread, one process's threads, processes side by side.

For each preset, in child processes started one after another (each times 40 steps of the single
models' training after 5 untimed ones, `train` on the preset's training set): the step with one
thread, with T threads in one process, and with T processes of one thread running at once (the
way ``multiview simulate --jobs`` spends the cores). Printed per preset: the milliseconds of each,
the speed-up of T threads over one and the throughput of T processes over one, each against the
limit T.

    python benchmarks/bench_cores.py                       # default, paper, paper_kd; T = 2
    python benchmarks/bench_cores.py --presets paper_kd --cores 2 --steps 40

Run it on an idle machine: other processes take cores from both settings alike, but not fairly.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import dataclasses, json, sys, time
from multiview.threads import use_threads
use_threads(int(sys.argv[2]))
from multiview.config import get_preset
from multiview.losses import LabelObjective
from multiview.run import Run, new_cnn
from multiview.train import train
cfg = get_preset(sys.argv[1]).with_overrides({"data.n_test": 1000})
run = Run.create(cfg)
steps = int(sys.argv[3])
tcfg = dataclasses.replace(cfg.train, loss_threshold=0.0, log_every=10**9)
objective = LabelObjective(run.train.y)
train(new_cnn(run, "model", cfg.n_seeds), run.train_inputs, objective, cfg.n_seeds, tcfg, max_steps=5)
net = new_cnn(run, "model", cfg.n_seeds)
t = time.perf_counter()
train(net, run.train_inputs, objective, cfg.n_seeds, tcfg, max_steps=steps)
print(json.dumps({"ms_per_step": (time.perf_counter() - t) / steps * 1e3}))
"""


def _start(preset: str, threads: int, steps: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, preset, str(threads), str(steps)], stdout=subprocess.PIPE, text=True
    )


def _ms(process: subprocess.Popen) -> float:
    out, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"a timing process failed (exit {process.returncode})")
    return json.loads(out.strip().splitlines()[-1])["ms_per_step"]


def measure(preset: str, cores: int, steps: int) -> dict[str, float]:
    """Milliseconds a step: one thread, ``cores`` threads, ``cores`` processes at once (their mean)."""
    one = _ms(_start(preset, 1, steps))
    threaded = _ms(_start(preset, cores, steps))
    side = [_start(preset, 1, steps) for _ in range(cores)]
    each = sum(_ms(p) for p in side) / cores
    return {
        "one_thread_ms": one,
        "threads_ms": threaded,
        "processes_ms_each": each,
        "threads_speedup": one / threaded,
        "processes_throughput": cores * one / each,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="default,paper,paper_kd")
    ap.add_argument("--cores", type=int, default=2, help="threads in one process, and processes at once")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args()
    report = {}
    print(f"{'preset':10} {'1 thread':>10} {f'{args.cores} threads':>11} {f'{args.cores} procs each':>14}"
          f" {'threads: speed-up':>18} {'processes: throughput':>22}")  # fmt: skip
    for preset in args.presets.split(","):
        r = report[preset] = measure(preset, args.cores, args.steps)
        ms = f"{r['one_thread_ms']:8.1f}ms {r['threads_ms']:9.1f}ms {r['processes_ms_each']:12.1f}ms"
        limit = f"× of {args.cores}"
        ratios = f"{r['threads_speedup']:11.2f}{limit} {r['processes_throughput']:15.2f}{limit}"
        print(f"{preset:10} {ms} {ratios}")
    if args.out is not None:
        figures = {"cores": args.cores, "steps": args.steps, "presets": report}
        args.out.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
