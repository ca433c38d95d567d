"""The theorem checks of several runs side by side: the README's table over master seeds.

    python scripts/verdicts.py runs/paper_kd-s0 runs/paper_kd-s1 runs/paper_kd-s2 ...

Reads each run's ``results.json`` (a partial run counts with the checks it has) and prints, per
check, its bound, the measured value per run (err/μ for error checks, a fraction for the
mechanism checks) and how many runs pass, as Markdown. A run without a check shows "–". Runs are
given in the order of the columns; their master seeds (``seed`` in the config) head the table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from multiview.files import read_results


def bound_text(entry: dict, mu: float) -> str:
    bound = entry["bound"]
    if "rule" in bound:  # a gain check: err > (less than half the gain) or ≤ (at least half)
        share = "< ½" if bound["rule"].startswith("err >") else "≥ ½"
        return f"{share} of {'KD' if 'err(kd)' in bound['rule'] else 'the ensemble'}'s gain"
    low, high = bound.get("low"), bound.get("high")
    if entry.get("measured_over_mu") is None:
        return f"≥ {low:.0%}" if low is not None else f"≤ {high:.0%}"
    if low is not None and high is not None:
        return f"{low / mu:.2f}–{high / mu:.2f}"
    return f"< {high / mu:.2f}" if high is not None else f"> {low / mu:.2f}"


def value_text(entry: dict | None) -> str:
    if entry is None:
        return "–"
    if entry.get("measured_over_mu") is not None:
        value = entry["measured_over_mu"]
        return f"{value:.4f}" if value < 0.01 else f"{value:.3f}"
    return f"{entry['measured']:.0%}"


def table(runs: list[dict]) -> str:
    names: list[str] = []
    claims: dict[str, dict] = {}
    for run in runs:
        for entry in run.get("bounds", []):
            if entry["name"] not in claims:
                names.append(entry["name"])
                claims[entry["name"]] = entry
    seeds = ", ".join(str(run["config"]["seed"]) for run in runs)
    lines = [
        f"| check | bound | measured, master seeds {seeds} | holds |",
        "|---|---|---|---|",
    ]
    for name in names:
        entries = [next((e for e in run.get("bounds", []) if e["name"] == name), None) for run in runs]
        ran = [e for e in entries if e is not None]
        mu = runs[0]["config"]["data"]["mu"]
        values = ", ".join(value_text(e) for e in entries)
        holds = f"{sum(bool(e['passed']) for e in ran)} of {len(ran)}"
        lines.append(f"| {claims[name]['claim']} | {bound_text(claims[name], mu)} | {values} | {holds} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (or their results.json)")
    args = parser.parse_args()
    print(table([read_results(folder) for folder in args.runs]))


if __name__ == "__main__":
    main()
