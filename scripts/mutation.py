"""Mutation testing of the science core with mutmut (configuration: ``[tool.mutmut]`` in pyproject.toml).

    python scripts/mutation.py                     # every module of the science core
    python scripts/mutation.py bounds probes       # some of them
    python scripts/mutation.py --report            # the table of the last run, nothing rerun
    python scripts/mutation.py --recheck-timeouts  # rerun the mutants that ran out of time, unlimited

mutmut copies ``multiview/`` into ``mutants/`` with every mutant behind a switch, runs the selected
test files once to learn which tests call which function, and then runs, for each mutant, only
the tests that call its function (stopping at the first failure). This script runs it on one
worker at the lowest priority with one thread per process (the machine is shared), then prints
the kill rate per module: killed / (mutants − equivalent), where the equivalent mutants are the
ones listed with their reason in ``docs/testing.md``. Mutants named there under a heading that
says "not equivalent" are survivors whose reason is recorded: they count as survived. Survivors
not named there at all are printed; the exit status is 1 when a module is below ``--fail-under``
percent.

A mutant that ran past mutmut's CPU-time limit is not thereby detected: the limit is a multiple of
its tests' recorded time, and a mutant whose tests pass a little slower than that (a loaded
machine, a worker process's accumulated CPU time) is cut off too. ``--recheck-timeouts`` runs each
such mutant's tests again without the limit (only a wall-clock cap of ``--recheck-cap`` seconds)
and records what they say: killed (a test failed), survived (all passed) or still out of time.
Until rechecked, a mutant out of time counts as "timeout", which the kill rate counts as
detected; a mutant listed as equivalent counts as equivalent whatever its status.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from multiview.files import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
CORE = ("data", "inputs", "model", "losses", "train", "probes", "evaluate", "ensemble", "bounds", "baselines")
EQUIVALENT_LIST = ROOT / "docs" / "testing.md"
MUTANT_NAME = re.compile(r"`(multiview\.\w+\.\S+__mutmut_\d+)`")

KILLED = {1, 3}  # a test failed (3: pytest's internal error)
TIMEOUT = {24, -24, 36, 152, 255}  # ran past its CPU-time limit: counted as detected
NO_TESTS = {5, 33}


def listed_mutants() -> tuple[set[str], set[str]]:
    """The mutants ``docs/testing.md`` names in backticks: (equivalent, not equivalent), the
    second those under a heading that says "not equivalent"."""
    equivalent: set[str] = set()
    not_equivalent: set[str] = set()
    if not EQUIVALENT_LIST.exists():
        return equivalent, not_equivalent
    target = equivalent
    for line in EQUIVALENT_LIST.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            target = not_equivalent if "not equivalent" in line.lower() else equivalent
        target.update(MUTANT_NAME.findall(line))
    return equivalent, not_equivalent


ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
"""The environment every mutant's tests run under: one thread per process, fixed hashing."""


def run_mutmut(modules: list[str]) -> int:
    env = {**os.environ, **ONE_THREAD}
    patterns = [f"multiview.{m}.*" for m in modules]
    cmd = ["nice", "-n", "19", sys.executable, "-m", "mutmut", "run", "--max-children", "1", *patterns]
    return subprocess.call(cmd, cwd=ROOT, env=env)


def module_meta(module: str) -> Path:
    """mutmut's record of a module's mutants (their exit codes among other things)."""
    return ROOT / "mutants" / "multiview" / f"{module}.py.meta"


def module_results(module: str) -> dict[str, int | None]:
    meta = module_meta(module)
    if not meta.exists():
        return {}
    return json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]


def recheck_timeouts(modules: list[str], cap_s: float) -> None:
    """Run each mutant of ``modules`` that ran out of time against its tests (mutmut's map from
    functions to tests) without the CPU-time limit, stopping at the first failure, and write the
    exit code into mutmut's record: 1 (killed), 0 (survived), or the timeout code kept when the
    tests run past ``cap_s`` seconds of wall time."""
    stats = json.loads((ROOT / "mutants" / "mutmut-stats.json").read_text(encoding="utf-8"))
    tests_of = stats["tests_by_mangled_function_name"]
    env = {**os.environ, **ONE_THREAD}
    for module in modules:
        meta_path = module_meta(module)
        if not meta_path.exists():
            continue
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        codes = meta["exit_code_by_key"]
        for name in sorted(n for n, code in codes.items() if code in TIMEOUT):
            tests = sorted(tests_of.get(name.rsplit("__mutmut_", 1)[0], []))
            cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
            try:
                done = subprocess.run(
                    cmd, cwd=ROOT / "mutants", env={**env, "MUTANT_UNDER_TEST": name},
                    capture_output=True, timeout=cap_s,
                )  # fmt: skip
                code = done.returncode
            except subprocess.TimeoutExpired:
                code = codes[name]
            if code in KILLED:
                verdict = "killed"
            elif code == 0:
                verdict = "survived"
            elif code in TIMEOUT:
                verdict = "still out of time"
            else:
                verdict = f"pytest exit code {code}"
            print(f"{name}: {verdict}")
            codes[name] = code
            atomic_write_text(meta_path, json.dumps(meta))  # a recheck cut short keeps the ones done


def report(modules: list[str], fail_under: float) -> int:
    equivalent, not_equivalent = listed_mutants()
    rows, unexplained, below = [], [], []
    listed_survivors = 0
    incomplete: list[str] = []
    for module in modules:
        codes = module_results(module)
        if not codes:
            rows.append((module, "not run"))
            continue
        count = Counter()
        for name, code in codes.items():
            if code is None:
                count["not checked"] += 1
            elif code in KILLED:
                count["killed"] += 1
            elif name in equivalent:
                count["equivalent"] += 1
            elif code in TIMEOUT:
                count["timeout"] += 1
            else:
                count["survived"] += 1
                if name in not_equivalent:
                    listed_survivors += 1
                else:
                    why = "no test calls it" if code in NO_TESTS else f"exit code {code}"
                    unexplained.append((name, why))
        judged = len(codes) - count["equivalent"] - count["not checked"]
        detected = count["killed"] + count["timeout"]
        rate = 100.0 * detected / judged if judged else float("nan")
        if count["not checked"]:
            incomplete.append(module)
        if rate < fail_under:
            below.append(module)
        rows.append(
            (
                module,
                f"{len(codes):7d} {count['killed']:7d} {count['timeout']:7d} {count['equivalent']:10d} "
                f"{count['survived']:8d} {count['not checked']:11d} {rate:8.1f} %",
            )
        )
    print(
        f"{'module':10s} {'mutants':>7s} {'killed':>7s} {'timeout':>7s} {'equivalent':>10s} "
        f"{'survived':>8s} {'not checked':>11s} {'kill rate':>10s}"
    )
    for module, text in rows:
        print(f"{module:10s} {text}")
    if incomplete:
        print(
            f"\nnot every mutant of {', '.join(incomplete)} has a result (an interrupted or partial run): "
            "their kill rate is over the checked mutants only; rerun them for the real one"
        )
    if listed_survivors:
        print(f"\n{listed_survivors} survivors are listed in docs/testing.md as not equivalent (with why)")
    if unexplained:
        print(
            f"\n{len(unexplained)} surviving mutants are not named in docs/testing.md "
            "(see one with `mutmut show NAME`):"
        )
        for name, why in sorted(unexplained):
            print(f"  {name}  ({why})")
    if below:
        print(f"\nbelow {fail_under:g} %: {', '.join(below)}")
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("modules", nargs="*", metavar="module", help="any of: " + ", ".join(CORE))
    parser.add_argument("--report", action="store_true", help="print the last run's table, run nothing")
    parser.add_argument("--fail-under", type=float, default=90.0, help="percent (default 90)")
    parser.add_argument(
        "--recheck-timeouts",
        action="store_true",
        help="rerun the mutants that ran out of time without the limit, then report",
    )
    parser.add_argument("--recheck-cap", type=float, default=600.0, help="wall seconds a recheck may take")
    args = parser.parse_args()
    unknown = sorted(set(args.modules) - set(CORE))
    if unknown:
        parser.error(f"not a module of the science core: {', '.join(unknown)}")
    modules = args.modules or list(CORE)
    if args.recheck_timeouts:
        recheck_timeouts(modules, args.recheck_cap)
    elif not args.report:
        code = run_mutmut(modules)
        if code != 0:
            print(f"mutmut exited with {code}", file=sys.stderr)
            return code
    return report(modules, args.fail_under)


if __name__ == "__main__":
    sys.exit(main())
