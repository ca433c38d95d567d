"""Run every benchmark, print each figure and whether its target is met, write a JSON report.

python benchmarks/run.py                 # CPU, full
python benchmarks/run.py --quick         # fewer points
python benchmarks/run.py --device cuda --out report.json
python benchmarks/run.py --only stages   # one part alone (--skip leaves parts out)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_cores import measure as cores_measure  # noqa: E402
from benchmarks.bench_data import data_generation, sampler_vs_randn  # noqa: E402
from benchmarks.bench_protocol import full_protocol  # noqa: E402
from benchmarks.bench_scaling import scaling  # noqa: E402
from benchmarks.bench_stages import QUICK_PROJECTIONS, stage_figure, stage_scaling  # noqa: E402
from benchmarks.bench_training import (  # noqa: E402
    batched_vs_loop,
    machine_roofline,
    step_vs_bandwidth,
    step_vs_gemm_peak,
)
from benchmarks.common import machine, write_report  # noqa: E402
from multiview.terminal import make_console  # noqa: E402

PARTS = ("batching", "gemm", "bandwidth", "cores", "data", "protocol", "scaling", "stages")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default="benchmarks/report.json")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--compile", action="store_true", help="also time the step with train.compile (slow start)"
    )
    ap.add_argument("--skip", default="", help=f"comma-separated parts to leave out, of {','.join(PARTS)}")
    ap.add_argument("--only", default="", help="comma-separated parts to run (the others are skipped)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: the project's policy)")
    ap.add_argument(
        "--figure",
        default="",
        help="path stem for the stage-scaling figure (png), e.g. docs/figures/stage_scaling",
    )
    args = ap.parse_args()
    from multiview.threads import use_threads

    use_threads(args.threads)
    device = torch.device(args.device)
    skip = set(filter(None, args.skip.split(",")))
    only = set(filter(None, args.only.split(",")))
    unknown = (skip | only) - set(PARTS)
    if unknown:
        ap.error(f"unknown part(s) {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    if only:
        skip |= set(PARTS) - only
    console = make_console()
    report = {
        "machine": machine(device),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average_start": load_average(),
    }
    if "batching" not in skip:
        report["batched_vs_loop"] = batched_vs_loop(device)
    if "gemm" not in skip:
        report["step_vs_gemm"] = {nm: step_vs_gemm_peak(device, nm) for nm in ("gaussian", "orthogonal")}
        if args.compile:
            report["step_vs_gemm"]["gaussian+compile"] = step_vs_gemm_peak(device, "gaussian", compiled=True)
    if "bandwidth" not in skip:
        report["step_vs_bandwidth"] = {
            "default": step_vs_bandwidth(device, "default", steps=50),
            "paper": step_vs_bandwidth(device, "paper", steps=5),
            "paper_kd": step_vs_bandwidth(device, "paper_kd", steps=5),
        }
    if "cores" not in skip and device.type == "cpu" and (os.cpu_count() or 1) > 1:
        report["cores"] = {"cores": 2, "paper_kd": cores_measure("paper_kd", cores=2, steps=20)}
        step = report.get("step_vs_bandwidth", {}).get("paper_kd")
        if step is not None:  # the whole machine's throughput against its roofline on both cores
            roof = machine_roofline(device, step, cores=2)
            c = report["cores"]["paper_kd"]
            roof["threads_fraction"] = roof["seconds"] / (c["threads_ms"] / 1e3)
            roof["processes_fraction"] = 2 * roof["seconds"] / (c["processes_ms_each"] / 1e3)
            report["cores"]["roofline"] = roof
    if "data" not in skip:
        report["data_generation"] = data_generation()
        report["sampler_vs_randn"] = sampler_vs_randn()
    if "protocol" not in skip:
        report["protocol"] = full_protocol(device)
    if "scaling" not in skip:
        report["scaling"] = scaling(str(device), quick=args.quick)
    if "stages" not in skip:
        projections = QUICK_PROJECTIONS if args.quick else None
        report["stages"] = stage_scaling(str(device), quick=args.quick, projections=projections)
        if args.figure:
            from multiview.plots.style import save

            save(stage_figure(report["stages"]), args.figure, formats=("png",))
    report["load_average"] = load_average()
    write_report(args.out, report)

    t = Table(
        title=f"Benchmarks on {report['machine'].get('gpu', report['machine']['processor'])} ({device})"
    )
    for col in ("figure", "value", "target", "met"):
        t.add_column(col)
    yes = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "–"}
    if "batched_vs_loop" in report:
        b = report["batched_vs_loop"]
        t.add_row(
            f"batched {b['seeds']} seeds vs loop (speed-up)",
            f"{b['speedup']:.2f}×",
            f"≥ {b['target']}×",
            yes[b["met"]],
        )
    for nm, g in report.get("step_vs_gemm", {}).items():
        t.add_row(
            f"training step / GEMM peak ({nm} noise; "
            f"{g['achieved_gflops']:.1f} of {g['gemm_peak_gflops']:.1f} GFLOP/s)",
            f"{g['fraction_of_peak']:.2f}",
            "≥ 0.5" if nm != "orthogonal" else "(information)",
            yes[g["met"]] if nm != "orthogonal" else "–",
        )
    for name, b in report.get("step_vs_bandwidth", {}).items():
        cpu = b.get("cpu_fraction_of_bandwidth")
        on_cpu = f"; by CPU time {cpu:.2f}" if cpu is not None and b.get("threads") == 1 else ""
        t.add_row(
            f"training step / memory bandwidth, orthogonal model, {name} shapes "
            f"({b['achieved_GBps']:.1f} of {b['triad_GBps']:.1f} GB/s STREAM triad{on_cpu}; "
            f"{b['bytes_per_step'] / 1e6:.0f} MB per step, a fused step {b['floor_fraction']:.2f} of it)",
            f"{b['fraction_of_bandwidth']:.2f}",
            "≥ 0.5",
            yes[b["met"]],
        )
        terms = b["roofline_terms"]
        cache = (
            f"{sum(b['cache_passes'].values())} passes in cache at {b['cache_triad_GBps']:.1f} GB/s "
            f"{terms['cache'] * 1e3:.1f} ms, "
            if b["blocked"]
            else ""
        )
        t.add_row(
            f"training step / its roofline, orthogonal model, {name} shapes "
            f"({b['roofline_seconds'] * 1e3:.1f} of {b['step_seconds'] * 1e3:.1f} ms: "
            f"{sum(b['passes'].values())} passes "
            f"{'through main memory' if b['blocked'] else 'over whole arrays'} at {b['triad_GBps']:.1f} GB/s "
            f"{terms['main memory'] * 1e3:.1f} ms, {cache}the product's "
            f"{b['product_gflop']:.2f} GFLOP at {b['gemm_peak_gflops']:.0f} GFLOP/s beyond its read "
            f"{terms['product arithmetic'] * 1e3:.1f} ms)",
            f"{b['fraction_of_roofline']:.2f}",
            "≥ 0.5",
            yes[b["roofline_met"]],
        )
    if "cores" in report:
        c = report["cores"]["paper_kd"]
        t.add_row(
            f"paper_kd step on 2 cores: 2 threads in one process vs 1 thread ({c['threads_ms']:.1f} against "
            f"{c['one_thread_ms']:.1f} ms)",
            f"{c['threads_speedup']:.2f}×",
            "≤ 2× (cores)",
            "–",
        )
        t.add_row(
            "paper_kd step on 2 cores: 2 processes of 1 thread, throughput vs 1 thread "
            f"({c['processes_ms_each']:.1f} ms a step each; `simulate --jobs`)",
            f"{c['processes_throughput']:.2f}×",
            "≤ 2× (cores)",
            "–",
        )
        roof = report["cores"].get("roofline")
        if roof is not None:
            lim = roof["limits"]
            limits = (
                f"{roof['seconds'] * 1e3:.1f} ms a step at {lim['triad_GBps']:.0f} GB/s main memory, "
                f"{lim['cache_triad_GBps']:.0f} GB/s cache, {lim['gemm_peak_gflops']:.0f} GFLOP/s"
            )
            t.add_row(
                f"paper_kd on 2 cores / its roofline on 2 cores, 2 processes of 1 thread (2 steps in "
                f"{c['processes_ms_each']:.1f} ms; {limits})",
                f"{roof['processes_fraction']:.2f}",
                "≥ 0.5",
                yes[roof["processes_fraction"] >= 0.5],
            )
            t.add_row(
                "paper_kd on 2 cores / its roofline on 2 cores, 2 threads in one process "
                f"({c['threads_ms']:.1f} ms)",
                f"{roof['threads_fraction']:.2f}",
                "(information: `simulate` runs processes)",
                "–",
            )
    if "data_generation" in report:
        g = report["data_generation"]["orthogonal"]
        t.add_row(
            "data generation vs per-example loop, orthogonal noise "
            f"({g['examples_per_second']:.0f} examples/s, {g['patches_per_second']:.0f} patches/s)",
            f"{g['speedup']:.0f}×",
            "≥ 100×",
            yes[report["data_generation"]["met"]],
        )
    if "sampler_vs_randn" in report:
        r = report["sampler_vs_randn"]
        t.add_row(
            f"Gaussian sampler / torch.randn of its {r['numbers'] / 1e6:.1f} M noise numbers",
            f"{r['ratio']:.2f}×",
            f"≤ {r['target']}×",
            yes[r["met"]],
        )
    if "protocol" in report:
        p = report["protocol"]
        where = ", ".join(f"{k} {v:.1f}s" for k, v in p["stages"].items())
        t.add_row(
            f"full protocol, default preset ({where})", f"{p['seconds']:.1f} s", "≤ 60 s", yes[p["met"]]
        )
    for key, s in report.get("scaling", {}).items():
        t.add_row(
            f"step time vs {key} (peak memory {s['peak_memory_mb'][0]:.0f}→{s['peak_memory_mb'][-1]:.0f} MB)",
            f"slope {s['loglog_slope']:.2f}",
            "(information)",
            "–",
        )
    stage_rows(t, report.get("stages"))
    console.print(t)
    console.print(
        f"load average at the start {report['load_average_start']}, at the end {report['load_average']} "
        f"(1, 5, 15 min; {os.cpu_count()} cores), {torch.get_num_threads()} torch threads"
    )
    console.print(f"report: {args.out}")
    return 0


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (other jobs on a shared machine inflate every time)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not Unix
        return []


TARGETS = {"paper": 180.0, "paper_kd k=20 m=16 N=1000": 1200.0, "paper k=20 m=16": 1200.0}
"""The issue's targets for a whole protocol on 2 cores: ``paper`` ≤ 3 min, k = 20, m = 16 ≤ 20 min."""


def stage_rows(t: Table, stages: dict | None) -> None:
    """Rows of the stage benchmark: each stage's cost per step at the base shape, its slope per
    parameter (CPU time on a CPU, where other jobs inflate wall time), and the projected protocols
    (measured seconds per step × steps: projections, so their target is never marked met)."""
    if not stages:
        return
    cpu = stages.get("device", "cpu") == "cpu"
    c = "cpu_" if cpu else ""
    clock = "CPU ms" if cpu else "ms"
    base = stages["points"].get(f"{stages['base']} ")
    if base is not None:
        per = ", ".join(
            f"{s} {1000 * e[c + 'step_seconds']:.0f}"
            for s, e in base["stages"].items()
            if "step_seconds" in e
        )
        t.add_row(f"{clock} per step at the {stages['base']} shape ({per})", "", "(information)", "–")
    for a in stages["axes"].values():
        slopes = ", ".join(f"{s} {v[c + 'loglog_slope']:.2f}" for s, v in a["stages"].items())
        t.add_row(
            f"stage {clock} per step vs {a['symbol']} = {'/'.join(map(str, a['values']))}, "
            f"log-log slope ({slopes})",
            "",
            "(information)",
            "–",
        )
    for name, both in stages["projections"].items():
        target = TARGETS.get(name)
        for how in ("used", "used, CPU time"):
            p = both[how]
            top = sorted(p["stages"].items(), key=lambda kv: -kv[1]["seconds"])[:4]
            where = ", ".join(f"{s} {v['seconds']:.0f}s" for s, v in top)
            clock_note = "CPU seconds" if p["clock"] == "cpu" else "wall seconds"
            t.add_row(
                f"PROJECTED whole protocol, {name}: {clock_note} per step × steps "
                f"(budget {both['budget']['seconds']:.0f} s in wall time; {where})",
                f"{p['seconds']:.0f} s",
                f"≤ {target:.0f} s" if target else "(information)",
                ("projected: no" if p["seconds"] > target else "projected: yes (unmeasured)")
                if target
                else "–",
            )


if __name__ == "__main__":
    raise SystemExit(main())
