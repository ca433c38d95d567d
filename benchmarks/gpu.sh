#!/usr/bin/env bash
# Every benchmark on a lent GPU in one go (a few minutes), plus the TF32 / bf16 tolerance check.
# Usage (from the repository root, on the GPU machine):  bash benchmarks/gpu.sh [OUT_DIR]
# Writes OUT_DIR/report.json, OUT_DIR/precision.json and OUT_DIR/log.txt.
# DEVICE=cpu QUICK=1 runs the same script on a CPU with fewer points, only to check the script itself.
set -euo pipefail
out=${1:-${OUT:-benchmarks/gpu-out}}
device=${DEVICE:-cuda}
quick=()
if [ "${QUICK:-0}" = 1 ]; then quick=(--quick); fi
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || export PYTHONPATH=$PWD
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  timeout 420 python3 benchmarks/run.py --device "$device" "${quick[@]}" --compile --out "$out/report.json"
  timeout 120 python3 benchmarks/precision_check.py --device "$device" --out "$out/precision.json"
} 2>&1 | tee "$out/log.txt"
