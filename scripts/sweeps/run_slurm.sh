#!/usr/bin/env bash
# Run a sweep on a SLURM cluster (one job array through submitit), wait, build its table and
# (optionally) one phase diagram. Needs: pip install 'multiview[slurm]'. Partition, time limit,
# GPUs, CPUs, memory and array parallelism come from the spec's [slurm] table.
#
#   scripts/sweeps/run_slurm.sh SPEC [X Y METRIC] [-- extra multiview sweep options]
#   scripts/sweeps/run_slurm.sh scripts/sweeps/mu_rho.toml mu rho ensemble_gain
#
# Interrupting only stops the watching: the jobs keep running, and running the same command again
# follows them (finished units are skipped, cancelled or timed-out units are submitted again).
set -euo pipefail
spec=${1:?usage: run_slurm.sh SPEC [X Y METRIC] [-- extra options]}
shift
x=${1:-}; y=${2:-}; metric=${3:-ensemble_gain}
[ $# -ge 3 ] && shift 3 || shift $#
[ "${1:-}" = "--" ] && shift
out=${OUT:-runs/sweeps/$(basename "$spec" .toml)}
status=0
multiview sweep "$spec" --backend slurm --out "$out" "$@" || status=$?
multiview collect "$out"
if [ -n "$x" ] && [ -n "$y" ]; then
  multiview plot phase "$out" --x "$x" --y "$y" --metric "$metric"
fi
exit $status
