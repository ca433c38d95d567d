"""Seconds per training step of every stage of the synthetic protocol, against k, m, N and S, and
the whole protocol's time projected from them.

Each point runs the protocol through its public driver (:func:`multiview.protocol.run_protocol`)
with every training cut to a few steps (``train.max_steps``, ``protocol.kd_steps`` and
``protocol.baseline_steps`` all ``steps``; ``train.loss_threshold = 0``, so every step runs) and a
:class:`~multiview.progress.Reporter` that clocks each step. Per training (``single``, ``kd``,
``rf:kd``, ...) it records the median seconds of a plain step (``step_seconds``), what a logged step
adds (``log_seconds``: the probes; the KD students' test error on ``kd_eval_examples`` examples), and
per stage the rest (``fixed_seconds``: initialization, evaluation on the test set, the probes of
the results). The ensembles train nothing: their stage seconds are all fixed.

The points vary one of k, m, N and S at a time around the ``paper`` preset's shape (k = 10, m = 4,
N = 500, S = 10), all in this one process, one after the other; the log-log slope of each stage's
cost per step against each parameter is fitted over them. :func:`project` turns the per-step
costs into the time of a whole protocol: measured cost per step × the steps a preset gives each
training (its budget, or the steps a measured run used), plus the fixed part (its evaluation scaled
to the preset's test set). Those are projections, not measurements.

python benchmarks/bench_stages.py --quick --threads 1 --out stages.json --figure docs/figures/stage_scaling
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from multiview.progress import Reporter  # noqa: E402

BASE = "paper"
AXES: dict[str, list[int]] = {
    "n_seeds": [5, 10, 20],
    "data.n_train": [250, 500, 1000],
    "data.k": [5, 10, 20],
    "model.m": [2, 4, 8, 16],
}
QUICK_AXES: dict[str, list[int]] = {
    "n_seeds": [5, 10],
    "data.n_train": [250, 500],
    "data.k": [10, 20],
    "model.m": [4, 16],
}
SYMBOLS = {"n_seeds": "S", "data.n_train": "N", "data.k": "k", "model.m": "m"}

PROJECTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "paper": ("paper", {}),
    "paper_kd": ("paper_kd", {}),
    "paper_kd k=20 m=16 N=1000": ("paper_kd", {"data.k": 20, "data.n_train": 1000}),
    "paper k=20 m=16": ("paper", {"data.k": 20, "model.m": 16}),
}
"""The configurations whose whole protocol :func:`project` estimates: the two presets,
``paper_kd`` at k = 20 with 50 training examples per class as at k = 10
(``scripts/sweeps/kd_k20.toml``), and ``paper`` itself at k = 20, m = 16 (N = 500)."""

QUICK_PROJECTIONS = ("paper", "paper_kd")
"""The projections of ``--quick`` (each k = 20 point takes 2–4 minutes on this machine)."""

USED_STEPS: dict[str, dict[str, int]] = {
    "paper": {"single": 1875, "training_average": 1612, "rf:single": 87, "rf:training_average": 86},
    "paper_kd": {
        "single": 3250,
        "training_average": 3148,
        "rf:single": 65,
        "rf:training_average": 57,
        "ntk:single": 63,
        "ntk:training_average": 137,
    },
}
"""Steps that measured runs took where models stop early at the loss threshold (the largest over
the seeds, which all step until the last one stops): ``paper`` and ``paper_kd``, the full protocol
at master seed 0 (``paper``'s NTK models used their whole 1,000 steps). Students and the
baselines' KD run their whole budget. Each preset's steps are also used for its k = 20 point,
where no run has finished: an estimate, not a measurement."""

TRAININGS: dict[str, tuple[str, ...]] = {
    "single": ("single",),
    "training_average": ("training_average",),
    "kd": ("kd",),
    "kd_onehot": ("kd_onehot",),
    "self_kd": ("self_kd",),
    "random_features": ("rf:single", "rf:training_average", "rf:kd"),
    "ntk": ("ntk:single", "ntk:training_average", "ntk:kd"),
}
"""The trainings inside each stage, by the names they report progress under."""

STUDENTS = ("kd", "kd_onehot", "self_kd")
"""Trainings whose logged steps score the students on ``protocol.kd_eval_examples`` test examples."""


def _steps_of(training: str, cfg: Any) -> int:
    """The step budget a config gives one training (before any early stop)."""
    p, t = cfg.protocol, cfg.train
    if training.startswith(("rf:", "ntk:")):
        steps = p.baseline_steps or t.max_steps
        return p.kd_steps or steps if training.endswith(":kd") else steps
    return p.kd_steps or t.max_steps if training in STUDENTS else t.max_steps


def _log_every(training: str, cfg: Any) -> int:
    return cfg.protocol.kd_log_every if training in STUDENTS else cfg.train.log_every


class StepClock(Reporter):
    """A reporter that keeps the wall and CPU time (this process, all its threads) of every step
    callback of every training and of the end of every stage."""

    def __init__(self) -> None:
        self.times: dict[str, list[tuple[float, float]]] = {}
        self.marks: list[tuple[str, float, float]] = [("begin", *_now())]

    def run_started(self, header: dict[str, Any]) -> None:
        self.marks.append(("data", *_now()))

    def stage_started(self, stage: str, total: int) -> None:
        self.times[stage] = []

    def step(self, stage: str, step: int, total: int, active: int, loss: float) -> None:
        self.times.setdefault(stage, []).append(_now())

    def stage_finished(self, stage: str, seconds: float, cached: bool = False) -> None:
        self.marks.append((stage, *_now()))

    def spans(self) -> dict[str, tuple[float, float]]:
        """Wall and CPU seconds of the data and of each stage, from one mark to the next."""
        return {
            name: (wall - self.marks[i][1], cpu - self.marks[i][2])
            for i, (name, wall, cpu) in enumerate(self.marks[1:])
        }


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _split(times: list[tuple[float, float]], log_every: int) -> dict[str, float]:
    """Plain-step and logged-step seconds (wall, and ``cpu_``: this process's CPU time) from the
    callback times of one training (callback j comes after step j's forward and backward; the
    interval j → j+1 is the update and step j+1, logged when j+1 is a multiple of ``log_every``; the
    last callback, a forward pass only, is left out)."""
    out: dict[str, float] = {}
    for c, prefix in ((0, ""), (1, "cpu_")):
        plain, logged = [], []
        for j in range(len(times) - 2):
            dt = times[j + 1][c] - times[j][c]
            (logged if (j + 1) % log_every == 0 else plain).append(dt)
        step = statistics.median(plain[1:] or plain) if plain else float("nan")
        out[prefix + "step_seconds"] = step
        out[prefix + "log_seconds"] = max(0.0, statistics.median(logged) - step) if logged else 0.0
        out[prefix + "span_seconds"] = times[-1][c] - times[0][c]
    return out


def measure(
    overrides: dict[str, Any] | None = None,
    preset: str = BASE,
    steps: int = 7,
    log_every: int = 3,
    n_test: int = 5000,
    device: str = "cpu",
) -> dict[str, Any]:
    """One point: the protocol at ``preset`` + ``overrides``, every training cut to ``steps`` steps,
    logging every ``log_every`` steps, on ``n_test`` test examples. Returns per stage its measured
    ``seconds``, ``fixed_seconds`` and, for stages that train, ``step_seconds`` (one step of each of
    its trainings) and per training ``step_seconds`` / ``log_seconds``."""
    import torch

    from multiview.config import get_preset
    from multiview.protocol import run_protocol

    overrides = dict(overrides or {})
    cfg = get_preset(preset).with_overrides(
        {
            **overrides,
            "data.n_test": n_test,
            "train.max_steps": steps,
            "train.loss_threshold": 0.0,
            "train.log_every": log_every,
            "protocol.kd_steps": steps,
            "protocol.baseline_steps": steps,
            "protocol.kd_log_every": log_every,
            "protocol.kd_flow_time": 0.0,
        }
    )
    clock = StepClock()
    t = time.perf_counter()
    run_protocol(cfg, device, reporter=clock)
    wall = time.perf_counter() - t
    spans = clock.spans()
    stages: dict[str, Any] = {}
    for stage, (seconds, cpu) in spans.items():
        if stage == "data":
            continue
        entry: dict[str, Any] = {"seconds": seconds, "cpu_seconds": cpu}
        names = [n for n in TRAININGS.get(stage, ()) if n in clock.times]
        if names:
            per = {n: _split(clock.times[n], log_every) for n in names}
            entry["trainings"] = per
            for prefix, total in (("", seconds), ("cpu_", cpu)):
                entry[prefix + "step_seconds"] = sum(p[prefix + "step_seconds"] for p in per.values())
                spent = sum(p[prefix + "span_seconds"] for p in per.values())
                entry[prefix + "fixed_seconds"] = max(0.0, total - spent)
        else:
            entry["fixed_seconds"], entry["cpu_fixed_seconds"] = seconds, cpu
        stages[stage] = entry
    return {
        "preset": preset,
        "overrides": overrides,
        "shape": {
            "k": cfg.data.k,
            "m": cfg.model.m,
            "N": cfg.data.n_train,
            "S": cfg.n_seeds,
            "q": cfg.model.q,
            "units U=S·k·m": cfg.n_seeds * cfg.data.k * cfg.model.m,
            "patches n·P": cfg.data.n_train * cfg.data.P,
        },
        "steps": steps,
        "log_every": log_every,
        "n_test": n_test,
        "kd_eval_examples": min(cfg.protocol.kd_eval_examples, n_test),
        "data_seconds": spans["data"][0],
        "cpu_data_seconds": spans["data"][1],
        "threads": torch.get_num_threads(),
        "wall_seconds": wall,
        "stages": stages,
    }


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y against log x (NaN with fewer than two usable points)."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len(pts) < 2:
        return float("nan")
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    den = sum((p[0] - mx) ** 2 for p in pts)
    return sum((a - mx) * (b - my) for a, b in pts) / den if den else float("nan")


def cost(entry: dict[str, Any], clock: str = "wall") -> float:
    """What a stage's scaling is measured on: seconds per step (one of each training) for a stage
    that trains, its whole seconds for one that does not (the ensembles); ``clock`` ``wall`` or
    ``cpu`` (this process's CPU seconds)."""
    c = "" if clock == "wall" else "cpu_"
    return entry.get(c + "step_seconds", entry[c + "seconds"])


def stage_scaling(
    device: str = "cpu",
    quick: bool = False,
    steps: int | None = None,
    n_test: int | None = None,
    axes: dict[str, list[int]] | None = None,
    projections: tuple[str, ...] | None = None,
    echo: Any = None,
    base_preset: str = BASE,
) -> dict[str, Any]:
    """Every point of ``axes`` (default :data:`AXES`, :data:`QUICK_AXES` with ``quick``), the base
    point measured once, then the points of ``projections`` (names of :data:`PROJECTIONS`; default:
    all); per stage and parameter the cost at each value and its log-log slope; and
    :func:`project` for each projection."""
    axes = axes if axes is not None else (QUICK_AXES if quick else AXES)
    steps = steps or (5 if quick else 7)
    n_test = n_test or (2000 if quick else 5000)
    projections = tuple(PROJECTIONS) if projections is None else projections
    measured: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()

    def point(preset: str, over: dict[str, Any]) -> dict[str, Any]:
        key = f"{preset} " + " ".join(f"{k}={v}" for k, v in sorted(over.items()))
        if key not in measured:
            t = time.perf_counter()
            measured[key] = measure(over, preset, steps=steps, n_test=n_test, device=device)
            if echo is not None:
                echo(f"  {key.strip()}: {time.perf_counter() - t:.1f} s")
        return measured[key]

    from multiview.config import get_preset

    base = get_preset(base_preset)
    out_axes: dict[str, Any] = {}
    for key, values in axes.items():
        default = _get(base, key)
        points = [point(base_preset, {} if v == default else {key: v}) for v in values]
        per_stage: dict[str, Any] = {}
        for stage in points[0]["stages"]:
            ys = [cost(p["stages"][stage]) for p in points]
            cpu = [cost(p["stages"][stage], "cpu") for p in points]
            per_stage[stage] = {
                "cost_seconds": ys,
                "loglog_slope": slope(values, ys),
                "cpu_cost_seconds": cpu,
                "cpu_loglog_slope": slope(values, cpu),
            }
        out_axes[key] = {"symbol": SYMBOLS.get(key, key), "values": values, "stages": per_stage}
    out_proj = {}
    for name in projections:
        preset, over = PROJECTIONS[name]
        measured_point = point(preset, over)
        used = USED_STEPS.get(preset, {})
        out_proj[name] = {
            "budget": project(measured_point, preset, over),
            "used": project(measured_point, preset, over, used),
            "used, CPU time": project(measured_point, preset, over, used, clock="cpu"),
        }
    return {
        "device": str(device),
        "base": base_preset,
        "steps": steps,
        "n_test": n_test,
        "axes": out_axes,
        "projections": out_proj,
        "points": measured,
        "seconds": time.perf_counter() - started,
    }


def _get(cfg: Any, dotted: str) -> Any:
    node = cfg
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


EVALUATIONS = {
    "single": 1,
    "training_average": 1,
    "kd": 1,
    "kd_onehot": 1,
    "self_kd": 1,
    "ntk": 3,
}
"""Passes over the test set a stage makes at its end, each about as costly per example as the
students' probe (S CNNs' logits): the models' test logits; the three NTK families' logits. The
other stages' fixed part (the random-feature maps of the test set, the ensembles' combinations)
is taken as proportional to the test set."""


def project(
    point: dict[str, Any],
    preset: str,
    overrides: dict[str, Any],
    used: dict[str, int] | None = None,
    clock: str = "wall",
) -> dict[str, Any]:
    """The whole protocol's seconds for ``preset`` + ``overrides``, projected from a measured point
    of the same shape: per training, seconds per plain step × its steps, plus its logged steps ×
    their extra (the students' probe scaled to the preset's ``kd_eval_examples``); per stage, its
    fixed part as measured plus :data:`EVALUATIONS` passes over the rest of the preset's test set,
    at the probe's seconds per example (the other stages': scaled with the test set). ``used``
    (training → steps) replaces a budget by the steps a measured run took (models stop at the loss
    threshold; students and the baselines' KD run their whole budget). ``clock``: ``wall``
    seconds, or ``cpu`` seconds of this process (with one thread on a loaded machine, about what
    the step takes on an idle core). A projection, not a measurement."""
    from multiview.config import get_preset

    c = "" if clock == "wall" else "cpu_"
    cfg = get_preset(preset).with_overrides(overrides)
    used = used or {}
    extra_test = max(0, cfg.data.n_test - point["n_test"])
    scale_eval = min(cfg.protocol.kd_eval_examples, cfg.data.n_test) / max(1, point["kd_eval_examples"])
    probes = [
        t[c + "log_seconds"] / max(1, point["kd_eval_examples"])
        for e in point["stages"].values()
        for name, t in e.get("trainings", {}).items()
        if name in STUDENTS
    ]
    per_example = statistics.median(probes) if probes else 0.0
    stages: dict[str, Any] = {}
    for stage, entry in point["stages"].items():
        if stage in EVALUATIONS:
            fixed = entry[c + "fixed_seconds"] + EVALUATIONS[stage] * extra_test * per_example
        else:
            fixed = entry[c + "fixed_seconds"] * cfg.data.n_test / point["n_test"]
        train_s = 0.0
        steps_of: dict[str, int] = {}
        for name, t in entry.get("trainings", {}).items():
            n = used.get(name, _steps_of(name, cfg))
            logs = n // _log_every(name, cfg) + 1
            log = t[c + "log_seconds"] * (scale_eval if name in STUDENTS else 1.0)
            train_s += n * t[c + "step_seconds"] + logs * log
            steps_of[name] = n
        stages[stage] = {
            "seconds": fixed + train_s,
            "training_seconds": train_s,
            "fixed_seconds": fixed,
            "steps": steps_of,
        }
    data = point[c + "data_seconds"] * cfg.data.n_test / point["n_test"]
    total = sum(s["seconds"] for s in stages.values()) + data
    return {
        "preset": preset,
        "overrides": overrides,
        "shape": point["shape"],
        "clock": clock,
        "seconds": total,
        "stages": stages,
        "kind": "projection: measured seconds per step × steps, plus fixed costs",
    }


def check_projection(
    preset: str = BASE, steps: int = 200, measure_steps: int = 6, device: str = "cpu"
) -> dict[str, Any]:
    """The projection against a measurement: a short point (``measure_steps`` per training, 5,000 test
    examples) projected to the preset with every budget at ``steps`` (and the loss threshold at 0),
    then that protocol run in full, on the preset's whole test set, in the same process. Returns per
    stage the projected and measured wall and CPU seconds."""
    overrides = {
        "train.max_steps": steps,
        "train.loss_threshold": 0.0,
        "protocol.kd_steps": steps,
        "protocol.baseline_steps": steps,
    }
    point = measure({}, preset, steps=measure_steps, device=device)
    projected = {clock: project(point, preset, overrides, clock=clock) for clock in ("wall", "cpu")}
    from multiview.config import get_preset
    from multiview.protocol import run_protocol

    clock = StepClock()
    run_protocol(get_preset(preset).with_overrides(overrides), device, reporter=clock)
    spans = clock.spans()
    stages = {
        stage: {
            "projected_seconds": projected["wall"]["stages"][stage]["seconds"],
            "measured_seconds": spans[stage][0],
            "projected_cpu_seconds": projected["cpu"]["stages"][stage]["seconds"],
            "measured_cpu_seconds": spans[stage][1],
        }
        for stage in projected["wall"]["stages"]
    }
    return {
        "preset": preset,
        "steps": steps,
        "stages": stages,
        "projected_seconds": projected["wall"]["seconds"],
        "measured_seconds": sum(s[0] for s in spans.values()),
        "projected_cpu_seconds": projected["cpu"]["seconds"],
        "measured_cpu_seconds": sum(s[1] for s in spans.values()),
        "point": point,
    }


def stage_figure(report: dict[str, Any], clock: str | None = None) -> Any:
    """One panel per parameter, a line per stage: its cost (seconds per step, or per stage for the
    ensembles, dashed) against the parameter, log-log. ``clock``: ``cpu`` (this process's CPU
    seconds; the default on a CPU, where other jobs inflate wall time) or ``wall``."""
    from multiview.plots.style import CYCLE, GREY, headline, new_figure, style

    colors = (*CYCLE, GREY)
    clock = clock or ("cpu" if report.get("device", "cpu") == "cpu" else "wall")
    c = "" if clock == "wall" else "cpu_"
    axes = report["axes"]
    markers = ("o", "s", "^", "v", "D", "P", "X", "*", "h")
    with style():
        fig = new_figure(2.6 * len(axes), 3.6)
        panels = fig.subplots(1, len(axes), squeeze=False, sharey=True)[0]
        for ax, a in zip(panels, axes.values(), strict=True):
            for i, (stage, s) in enumerate(a["stages"].items()):
                ax.plot(
                    a["values"],
                    s[c + "cost_seconds"],
                    marker=markers[i % len(markers)],
                    markersize=3.5,
                    color=colors[i % len(colors)],
                    linestyle="-" if stage_trains(stage) else "--",
                    label=stage,
                )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks(a["values"])
            ax.set_xticklabels([str(v) for v in a["values"]])
            ax.minorticks_off()
            ax.set_xlabel(a["symbol"])
        what = "CPU seconds" if clock == "cpu" else "seconds"
        panels[0].set_ylabel(f"{what} per step (dashed: per stage)")
        handles, labels = panels[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=5, frameon=False)
        headline(fig, f"Cost of each stage against S, N, k, m around the {report['base']} preset")
    return fig


def stage_trains(stage: str) -> bool:
    return stage in TRAININGS


def table_rows(report: dict[str, Any], clock: str = "wall") -> list[tuple[str, ...]]:
    """Rows stage, slope per parameter (for printing); ``clock`` as in :func:`stage_figure`."""
    axes = report["axes"]
    key = "loglog_slope" if clock == "wall" else "cpu_loglog_slope"
    stages = list(next(iter(axes.values()))["stages"])
    return [
        (stage, *(f"{axes[k]['stages'][stage][key]:.2f}" for k in axes))
        for stage in stages
        if all(stage in axes[k]["stages"] for k in axes)
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--quick", action="store_true", help="two points per parameter, 5 steps, 2000 test examples"
    )
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: the project's policy)")
    ap.add_argument("--steps", type=int, default=0, help="steps per training (default 7, quick 5)")
    ap.add_argument(
        "--axes", default=None, help=f"comma-separated parameters to vary, of {', '.join(AXES)}; '' for none"
    )
    ap.add_argument(
        "--projections",
        default=None,
        help=f"comma-separated, of {', '.join(PROJECTIONS)}; '' for none "
        "(default: all; with --quick the first two, the k = 20 points taking minutes each)",
    )
    ap.add_argument(
        "--check", type=int, default=0, help="only check a projection against a run of this many steps"
    )
    ap.add_argument("--out", default="benchmarks/stages.json")
    ap.add_argument(
        "--figure", default="", help="path stem of the figure (png), e.g. docs/figures/stage_scaling"
    )
    args = ap.parse_args()
    from multiview.threads import use_threads

    threads = use_threads(args.threads)
    from benchmarks.common import write_report

    if args.check:
        checked = check_projection(BASE, args.check, device=args.device)
        checked["threads"] = threads
        write_report(args.out, checked)
        for stage, c in checked["stages"].items():
            print(
                f"{stage:17s} projected {c['projected_seconds']:7.1f} s, "
                f"measured {c['measured_seconds']:7.1f} s; "
                f"CPU {c['projected_cpu_seconds']:7.1f} s against {c['measured_cpu_seconds']:7.1f} s"
            )
        print(
            f"total: projected {checked['projected_seconds']:.0f} s, "
            f"measured {checked['measured_seconds']:.0f} s; "
            f"CPU {checked['projected_cpu_seconds']:.0f} s against {checked['measured_cpu_seconds']:.0f} s"
        )
        return 0
    if args.projections is None:
        names = QUICK_PROJECTIONS if args.quick else tuple(PROJECTIONS)
    else:
        names = tuple(n for n in args.projections.split(",") if n)
        unknown = set(names) - set(PROJECTIONS)
        if unknown:
            known = ", ".join(PROJECTIONS)
            ap.error(f"unknown projection(s) {', '.join(sorted(unknown))}; choose from {known}")
    axes = None
    if args.axes is not None:
        table = QUICK_AXES if args.quick else AXES
        axes = {key: table[key] for key in args.axes.split(",") if key}
    report = stage_scaling(
        args.device, quick=args.quick, steps=args.steps or None, axes=axes, projections=names, echo=print
    )
    report["threads"] = threads
    write_report(args.out, report)
    print_summary(report)
    if args.figure and report["axes"]:
        from multiview.plots.style import save

        save(stage_figure(report), args.figure, formats=("png",))
    return 0


def print_summary(report: dict[str, Any], console: Any = None) -> None:
    from rich.table import Table

    from multiview.terminal import make_console

    console = console or make_console()
    axes = report["axes"]
    if axes:
        for clock in ("wall", "cpu"):
            t = Table(title=f"log-log slope of each stage's {clock} seconds per step (ensembles: per stage)")
            t.add_column("stage")
            for a in axes.values():
                t.add_column(a["symbol"] + " " + "/".join(str(v) for v in a["values"]))
            for row in table_rows(report, clock):
                t.add_row(*row)
            console.print(t)
    for name, both in report["projections"].items():
        for how, p in both.items():
            parts = ", ".join(f"{s} {v['seconds']:.0f}s" for s, v in p["stages"].items() if v["seconds"] >= 1)
            console.print(f"projected {name} ({how} steps): {p['seconds']:.0f} s ({parts})")


if __name__ == "__main__":
    raise SystemExit(main())
