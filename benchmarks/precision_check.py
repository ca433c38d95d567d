"""TF32 and bf16 products against exact float32 on the ``default`` preset's single-model stage.

Prints, per precision, the wall time of the stage and the largest differences from float32 in
test error and learned views; exits non-zero when a difference exceeds its tolerance
(test error 0.01 absolute, learned-view matrix 2 % of entries).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from multiview.config import get_preset  # noqa: E402
from multiview.files import write_json  # noqa: E402
from multiview.protocol import run_protocol  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default="benchmarks/precision.json")
    args = ap.parse_args()
    runs = {}
    for mode in ("exact", "tf32", "bf16"):
        cfg = get_preset("default").with_overrides({"train.matmul": mode, "protocol.stages": "single"})
        t = time.perf_counter()
        runs[mode] = (run_protocol(cfg, args.device), time.perf_counter() - t)
    ref = runs["exact"][0]
    report, ok = {}, True
    for mode, (res, secs) in runs.items():
        pairs = zip(res["single"]["test_error"]["all"], ref["single"]["test_error"]["all"], strict=True)
        err = max(abs(a - b) for a, b in pairs)
        la = torch.tensor(res["views"]["learned"])
        lb = torch.tensor(ref["views"]["learned"])
        views = float((la != lb).float().mean())
        good = err <= 0.01 and views <= 0.02
        ok &= good
        report[mode] = {
            "seconds": secs,
            "max_test_error_diff": err,
            "learned_views_diff": views,
            "within_tolerance": good,
        }
    write_json(args.out, report)
    print(json.dumps(report, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
