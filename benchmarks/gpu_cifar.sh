#!/usr/bin/env bash
# The paper's CIFAR-10 protocol on one GPU with the fast network and the fast recipe:
# 10 single models, their ensemble, 10 KD students of the ensemble, 10 self-KD students, the
# ensemble over KD and the error overlap. Prints test accuracy per method and the training
# seconds per model (timed with CUDA events, after a 50-step warm-up run), and checks the
# target: a single model at >= 93 % in <= 10 s.
#
# Usage:  benchmarks/gpu_cifar.sh [OUT_DIR]
# Environment (all optional):
#   CIFAR_DATA   the data (.tar.gz, cifar-10-batches-py/ or ImageFolder); default: the shared
#                cifar10-jpeg.tar.gz beside the checkout or under ./shared
#   SEEDS=10  KD_STUDENTS=0 (0 = SEEDS)  EPOCHS= (recipe default)  STAGES=single,ensemble,kd,self_kd,ensemble_of_kd,overlap
#   KD_EPOCHS_FACTOR= (default 3: students train 3x their teachers' epochs; 1: as long)
#   RUN_DIR      where checkpoints go (default /tmp/gpu-cifar-run); results.json, config.toml,
#                summary.json and the log are copied to OUT_DIR (default $OUT or runs/gpu-cifar)
#   RESUME=1     reuse finished models in RUN_DIR
#   DEVICE=cuda  (cpu, with TRAIN_SUBSET / TEST_SUBSET / WIDTH, only to check the script itself)
#   PYTHON       the interpreter (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT_DIR=${1:-${OUT:-runs}/gpu-cifar}
RUN_DIR=${RUN_DIR:-/tmp/gpu-cifar-run}
PY=${PYTHON:-python3}
DATA=${CIFAR_DATA:-}
for candidate in ../shared/data/cifar10-jpeg.tar.gz shared/data/cifar10-jpeg.tar.gz; do
    if [ -z "$DATA" ] && [ -e "$candidate" ]; then DATA=$candidate; fi
done
if [ -z "$DATA" ]; then
    echo "gpu_cifar: no CIFAR-10 data found; set CIFAR_DATA to a .tar.gz, cifar-10-batches-py/ or ImageFolder" >&2
    exit 2
fi
mkdir -p "$OUT_DIR" "$RUN_DIR"
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"

"$PY" - <<'EOF'
import importlib, sys
missing = [m for m in ("torch", "numpy", "PIL", "tomli_w") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu_cifar: missing Python packages: {', '.join(missing)} (pip install -e . installs them)")
import os, torch
if os.environ.get("DEVICE", "cuda").startswith("cuda") and not torch.cuda.is_available():
    sys.exit(f"gpu_cifar: CUDA is not available to torch {torch.__version__}; this benchmark needs a GPU")
if torch.cuda.is_available():
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
EOF
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null || true

"$PY" - "$DATA" "$RUN_DIR" "$OUT_DIR" 2>&1 <<'EOF' | tee "$OUT_DIR/gpu_cifar.log"
import json, os, shutil, statistics, sys, time

import torch

from multiview.cifar import config
from multiview.cifar.protocol import run_cifar
from multiview.progress import Reporter

data, run_dir, out_dir = sys.argv[1:4]
overrides = {
    "data.path": data,
    "seeds": int(os.environ.get("SEEDS", "10")),
    "kd_students": int(os.environ.get("KD_STUDENTS", "0")),
    "stages": os.environ.get("STAGES", "single,ensemble,kd,self_kd,ensemble_of_kd,overlap"),
    "warmup_steps": 50,
}
for env, key, kind in (("EPOCHS", "epochs", float), ("TRAIN_SUBSET", "train_subset", int),
                       ("TEST_SUBSET", "test_subset", int), ("WIDTH", "fast_width", int),
                       ("KD_EPOCHS_FACTOR", "kd_epochs_factor", float)):
    if os.environ.get(env):
        overrides[key] = kind(os.environ[env])
cfg = config.build("fast", overrides)


class Lines(Reporter):
    def model_finished(self, stage, index, accuracy, seconds, cached):
        note = " (checkpoint)" if cached else ""
        print(f"{stage:>16} {index:3d}: test accuracy {100 * accuracy:6.2f}%  train {seconds:6.2f} s{note}", flush=True)

    def stage_finished(self, stage, seconds, cached=False):
        print(f"{stage}: {seconds:.1f} s", flush=True)


t0 = time.time()
res = run_cifar(cfg, os.environ.get("DEVICE", "cuda"), run_dir, resume=os.environ.get("RESUME") == "1", reporter=Lines())
wall = time.time() - t0

summary = {"gpu": res["environment"].get("gpu", res["environment"]["device"]), "torch": res["environment"]["torch"],
           "precision": res["environment"]["precision"], "epochs": cfg.recipe.epochs,
           "batch_size": cfg.recipe.batch_size, "wall_seconds": wall, "methods": {}}
print(f"\n{summary['gpu']}  {summary['precision']}  recipe fast, {cfg.recipe.epochs:g} epochs, "
      f"batch {cfg.recipe.batch_size}, tta {cfg.recipe.tta}")
print(f"{'method':>18} {'models':>6} {'accuracy (mean ± std)':>22} {'train s/model':>14} {'img/s':>9}")
for key in ("single", "ensemble", "kd", "self_kd", "ensemble_of_kd"):
    if key not in res:
        continue
    part = res[key]
    acc = part["test_accuracy"]
    sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
    secs = part.get("train_seconds")
    ips = part.get("images_per_second")
    summary["methods"][key] = {"accuracy": acc, "accuracy_mean": statistics.mean(acc), "accuracy_std": sd,
                               "train_seconds": secs, "images_per_second": ips}
    s = f"{statistics.mean(secs):14.2f}" if secs else f"{'':>14}"
    i = f"{statistics.mean(ips):9.0f}" if ips else f"{'':>9}"
    print(f"{key:>18} {len(acc):6d} {100 * statistics.mean(acc):13.2f} ± {100 * sd:5.2f}% {s} {i}")
single = res["single"]
hits = sum(a >= 0.93 and s <= 10.0 for a, s in zip(single["test_accuracy"], single["train_seconds"]))
summary["target"] = {"rule": "single model >= 93 % test accuracy in <= 10 s of training",
                     "models_meeting_it": hits, "models": len(single["test_accuracy"])}
print(f"\ntarget (>= 93 % in <= 10 s): {hits} of {len(single['test_accuracy'])} single models meet it")
print(f"total wall time {wall:.0f} s")
for name in ("results.json", "config.toml"):
    shutil.copy(os.path.join(run_dir, name), os.path.join(out_dir, name))
with open(os.path.join(out_dir, "summary.json"), "w") as fh:
    json.dump(summary, fh, indent=1)
EOF
