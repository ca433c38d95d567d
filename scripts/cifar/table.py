"""Accuracies of CIFAR runs or screens with 95 % Student-t intervals over seeds, and the
differences that decide the paper's ordering.

    python scripts/cifar/table.py runs/kd60 --control runs/single60    # full runs (results.json)
    python scripts/cifar/table.py --screen e60-T4-t0.1                  # screens (screen.jsonl)

For each method of each run (and the single models of ``--control``, e.g. single models trained
as long as the students) or screen (its control models): the models, mean ± sample standard
deviation, the 95 % interval of the mean (Student t with S − 1 degrees of freedom,
:func:`multiview.stats.seed_interval`), each model's accuracy and its training seconds. Then the
differences against the single models: KD − single and KD − control (Welch's t interval of a
difference of means, scipy), self-KD − its teacher, self-KD − control and control − single
(paired by seed, over the seeds both have). A screen's row is the union of every line of that
name in ``--log`` (later lines win), so a screen extended by more students reads as one.
Markdown on stdout, for docs/cifar.md.
"""

from __future__ import annotations

import argparse
import json
import math
import tomllib
from pathlib import Path

import numpy as np
from scipy import stats

from multiview.stats import mean_sd, seed_interval

LABELS = {
    "single": "single",
    "control": "single, students' epochs",
    "ensemble": "ensemble",
    "kd": "KD",
    "self_kd": "self-KD",
    "self_kd_ensemble": "ensemble of self-KD",
    "ensemble_of_kd": "ensemble of KD",
    "control_ensemble": "ensemble of the singles at the students' epochs",
}


def interval(xs: list[float]) -> tuple[float, float, float, float]:
    """Mean, sample sd, and the 95 % Student-t interval of the mean (NaN below two values)."""
    m, sd = mean_sd(xs)
    ci = seed_interval(xs)
    return (m, sd, *ci) if ci is not None else (m, math.nan, math.nan, math.nan)


def welch(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Mean of a − mean of b and its 95 % Welch interval."""
    a_, b_ = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = float(a_.mean() - b_.mean())
    if len(a_) < 2 or len(b_) < 2:
        return d, math.nan, math.nan
    va, vb = a_.var(ddof=1) / len(a_), b_.var(ddof=1) / len(b_)
    se = math.sqrt(va + vb)
    if se == 0:
        return d, d, d
    dof = (va + vb) ** 2 / (va**2 / (len(a_) - 1) + vb**2 / (len(b_) - 1))
    half = float(stats.t.ppf(0.975, dof)) * se
    return d, d - half, d + half


def paired(a: dict, b: dict) -> tuple[float, float, float]:
    """Mean of a_i − b_i over the seeds i of both (``acc`` by ``index``), its 95 % Student-t
    interval."""
    x = dict(zip(a["index"], a["acc"], strict=True))
    y = dict(zip(b["index"], b["acc"], strict=True))
    m, _, lo, hi = interval([x[i] - y[i] for i in x if i in y])
    return m, lo, hi


def pct(x: float) -> str:
    return "–" if math.isnan(x) else f"{100 * x:.2f}"


def methods(res: dict, control: dict | None) -> dict[str, dict]:
    """Per method: accuracies and training seconds per model."""
    out = {}
    for key in ("single", "ensemble", "kd", "self_kd", "ensemble_of_kd"):
        part = res.get(key)
        if part:
            out[key] = {
                "index": list(range(len(part["test_accuracy"]))),
                "acc": part["test_accuracy"],
                "seconds": part.get("train_seconds"),
                "epochs": part.get("epochs"),
            }
        if key == "self_kd" and part and part.get("ensemble"):
            out["self_kd_ensemble"] = {
                "index": [0],
                "acc": part["ensemble"]["test_accuracy"],
                "seconds": None,
                "epochs": None,
            }
        if key == "single" and control is not None:
            c = control["single"]
            out["control"] = {
                "index": list(range(len(c["test_accuracy"]))),
                "acc": c["test_accuracy"],
                "seconds": c.get("train_seconds"),
                "epochs": c.get("epochs"),
            }
    return out


def table(rows: dict[str, dict]) -> str:
    lines = [
        "| method | models | epochs | accuracy, mean ± sd (%) | 95 % interval | per model | s / model |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, r in rows.items():
        m, sd, lo, hi = interval(r["acc"])
        n = len(r["acc"])
        spread = f"{pct(m)} ± {pct(sd)}" if n > 1 else pct(m)
        ci = f"[{pct(lo)}, {pct(hi)}]" if n > 1 else "–"
        each = " / ".join(pct(a) for a in r["acc"])
        secs = f"{np.mean(r['seconds']):.0f}" if r["seconds"] else "–"
        ep = f"{np.mean(r['epochs']):g}" if r["epochs"] else "–"
        lines.append(f"| {LABELS[key]} | {n} | {ep} | {spread} | {ci} | {each} | {secs} |")
    return "\n".join(lines)


def differences(rows: dict[str, dict]) -> str:
    lines = ["| difference (points) | mean | 95 % interval |", "|---|---|---|"]
    single = rows["single"]

    def add(label: str, d: tuple[float, float, float]) -> None:
        ci = "–" if math.isnan(d[1]) else f"[{100 * d[1]:+.2f}, {100 * d[2]:+.2f}]"
        lines.append(f"| {label} | {100 * d[0]:+.2f} | {ci} |")

    if "kd" in rows:
        add("KD − single (Welch)", welch(rows["kd"]["acc"], single["acc"]))
        if "control" in rows:
            add(
                "KD − single at the students' epochs (Welch)",
                welch(rows["kd"]["acc"], rows["control"]["acc"]),
            )
    if "self_kd" in rows:
        add("self-KD − its teacher (paired)", paired(rows["self_kd"], single))
        if "control" in rows:
            add(
                "self-KD − single at the students' epochs (paired)",
                paired(rows["self_kd"], rows["control"]),
            )
    if "control" in rows:
        add("single at the students' epochs − single (paired)", paired(rows["control"], single))
    return "\n".join(lines)


def screen_rows(log: Path, name: str) -> tuple[dict, dict[str, dict]]:
    """The protocol of screen ``name`` and its methods, from every line of that name in ``log``."""
    lines = [r for r in map(json.loads, log.read_text().splitlines()) if r["name"] == name]
    if not lines:
        raise SystemExit(f"{log}: no screen named {name}")
    last = lines[-1]
    config, results = Path(last["run"]) / "config.toml", Path(last["run"]) / "results.json"
    epochs = [tomllib.loads(config.read_text())["recipe"]["epochs"]] if config.exists() else None
    seconds = json.loads(results.read_text())["single"]["train_seconds"] if results.exists() else None
    out = {
        "single": {
            "index": list(range(len(last["single"]))),
            "acc": last["single"],
            "seconds": seconds,
            "epochs": epochs,
        }
    }
    for key in ("control", "ensemble", "kd", "self_kd"):
        if key == "ensemble":
            out[key] = {"index": [0], "acc": [last["ensemble"]], "seconds": None, "epochs": None}
            continue
        acc: dict[int, float] = {}
        secs: dict[int, float] = {}
        for r in lines:
            acc.update({int(i): a for i, a in r.get(key, {}).items()})
            secs.update({int(i): s for i, s in r.get(f"{key}_train_seconds", {}).items()})
        if acc:
            idx = sorted(acc)
            out[key] = {
                "index": idx,
                "acc": [acc[i] for i in idx],
                "seconds": [secs[i] for i in idx if i in secs],
                "epochs": [last["student_epochs"]],
            }
    ensembles = (("kd", "ensemble_of_kd"), ("self_kd", "self_kd_ensemble"), ("control", "control_ensemble"))
    for key, label in ensembles:
        if f"{key}_ensemble" in last:
            out[label] = {"index": [0], "acc": [last[f"{key}_ensemble"]], "seconds": None, "epochs": None}
    return last["protocol"], out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="*", type=Path)
    ap.add_argument("--control", type=Path, help="a run whose single models are the control")
    ap.add_argument("--screen", action="append", default=[], help="a screen's name in --log")
    ap.add_argument("--log", type=Path, default=Path(__file__).with_name("screen.jsonl"))
    args = ap.parse_args()
    for name in args.screen:
        p, rows = screen_rows(args.log, name)
        print(f"\n{name}: t = {p['kd_t']}, T = {p['kd_temperature']}, kd_epochs = {p.get('kd_epochs', 0)}\n")
        print(table(rows))
        print()
        print(differences(rows))
    control = json.loads((args.control / "results.json").read_text()) if args.control else None
    for run in args.runs:
        res = json.loads((run / "results.json").read_text())
        p = res["config"]["protocol"]
        print(f"\n{run}: t = {p['kd_t']}, T = {p['kd_temperature']}, kd_epochs = {p.get('kd_epochs', 0)}\n")
        rows = methods(res, control)
        print(table(rows))
        print()
        print(differences(rows))


if __name__ == "__main__":
    main()
