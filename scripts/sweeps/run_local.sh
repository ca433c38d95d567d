#!/usr/bin/env bash
# Run a sweep on this machine, then build its table and (optionally) one phase diagram.
#
#   scripts/sweeps/run_local.sh SPEC [X Y METRIC] [-- extra multiview sweep options]
#   scripts/sweeps/run_local.sh scripts/sweeps/mu_rho_demo.toml mu rho single_view_error
#
# The sweep folder is $OUT (default runs/sweeps/<spec name>). Re-running resumes: finished units
# are skipped. Set WORKERS to override the number of parallel units.
set -euo pipefail
spec=${1:?usage: run_local.sh SPEC [X Y METRIC] [-- extra options]}
shift
x=${1:-}; y=${2:-}; metric=${3:-ensemble_gain}
[ $# -ge 3 ] && shift 3 || shift $#
[ "${1:-}" = "--" ] && shift
out=${OUT:-runs/sweeps/$(basename "$spec" .toml)}
extra=()
[ -n "${WORKERS:-}" ] && extra+=(--workers "$WORKERS")
multiview sweep "$spec" --backend local --out "$out" "${extra[@]}" "$@"
multiview collect "$out"
if [ -n "$x" ] && [ -n "$y" ]; then
  multiview plot phase "$out" --x "$x" --y "$y" --metric "$metric"
fi
