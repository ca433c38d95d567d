#!/usr/bin/env bash
# Every benchmark on a lent GPU in one go (a few minutes), plus the TF32 / bf16 tolerance check.
# Usage (from the repository root, on the GPU machine):  bash benchmarks/gpu.sh [OUT_DIR]
# Writes OUT_DIR/report.json, OUT_DIR/precision.json, OUT_DIR/stage_scaling.png and OUT_DIR/log.txt.
# Environment (all optional):
#   DEVICE=cuda     cpu only to check the script itself (the precision check then runs on the CPU too)
#   QUICK=0         1: benchmarks/run.py --quick (fewer points)
#   TIMEOUT_S=420   wall-clock limit of benchmarks/run.py in seconds
#   INSTALL=1       0: do not `pip install -e .` (use the checkout through PYTHONPATH)
set -euo pipefail
out=${1:-${OUT:-benchmarks/gpu-out}}
device=${DEVICE:-cuda}
timeout_s=${TIMEOUT_S:-420}
quick=()
if [ "${QUICK:-0}" = "1" ]; then quick=(--quick); fi
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if [ "${INSTALL:-1}" = "1" ]; then
  python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || export PYTHONPATH=$PWD
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  uptime || true
  timeout "$timeout_s" python3 benchmarks/run.py --device "$device" --compile "${quick[@]}" \
    --out "$out/report.json" --figure "$out/stage_scaling"
  timeout 120 python3 benchmarks/precision_check.py --device "$device" --out "$out/precision.json"
} 2>&1 | tee "$out/log.txt"
