"""The numbers a few training steps give, saved to compare two versions of the code bit for bit.

A change meant to keep every bit (a faster kernel, another order of passes) is checked on the
whole protocol by ``scripts/compare_results.py`` on two runs of ``multiview simulate``; on the
larger presets that takes most of an hour. This takes minutes: it trains the preset's single
models for STEPS steps, then students against their mean logits with each KD objective (the
practical one and the paper's), and saves their weights, losses and accuracies:

    python scripts/training_fingerprint.py paper_kd 40 /tmp/new.pt
    PYTHONPATH=../old-checkout python scripts/training_fingerprint.py paper_kd 40 /tmp/old.pt
    python scripts/training_fingerprint.py --compare /tmp/old.pt /tmp/new.pt

The package imported is the one Python finds first: ``PYTHONPATH`` puts another checkout's
``multiview`` before the one installed (or this checkout's, which is the last resort).

``--compare`` prints each saved tensor and whether its bits are the same (−0 and +0 differ);
its exit status is 1 when any differs. One thread; the test set is cut to 200 examples (it is
not used).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

sys.path.append(str(Path(__file__).resolve().parents[1]))  # the last resort: see above


def fingerprint(preset: str, steps: int) -> dict[str, torch.Tensor]:
    """Weights (S, k, m, D), the recorded losses and training accuracies, and the final accuracy
    of the preset's single models after ``steps`` steps, and of students trained ``steps`` steps
    against the singles' mean logits with each KD objective."""
    from multiview.config import get_preset
    from multiview.losses import LabelObjective, PracticalKDObjective, TheoryKDObjective
    from multiview.run import Run, new_cnn
    from multiview.train import train

    cfg = get_preset(preset).with_overrides({"data.n_test": 200})
    run = Run.create(cfg)
    tcfg = dataclasses.replace(cfg.train, loss_threshold=0.0, log_every=7)
    S, y, X = cfg.n_seeds, run.train.y, run.train_inputs
    saved: dict[str, torch.Tensor] = {}

    def keep(name: str, net, result) -> None:
        saved[f"{name} weights"] = net.weights.clone()
        saved[f"{name} losses"] = result.history["loss"]
        saved[f"{name} accuracies"] = result.history["train_accuracy"]
        saved[f"{name} final accuracy"] = result.final_train_accuracy

    net = new_cnn(run, "model", S)
    keep("single", net, train(net, X, LabelObjective(y), S, tcfg, max_steps=steps))
    teacher = net.logits(X).mean(0, keepdim=True).detach()
    objectives = {
        "practical KD": PracticalKDObjective(y, teacher, 0.5, 4.0),
        "theory KD": TheoryKDObjective(y, teacher, 0.5, 2.0),
    }
    for name, objective in objectives.items():
        student = new_cnn(run, f"student {name}", S)
        keep(name, student, train(student, X, objective, S, tcfg, max_steps=steps))
    return saved


def compare(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Print, tensor by tensor, whether the bits are the same; True when all are."""
    from multiview.losses import same_bits

    all_same = a.keys() == b.keys()
    for key in sorted(a.keys() | b.keys()):
        if key not in a or key not in b:
            print(f"{key}: only in {'the first' if key in a else 'the second'}")
            continue
        x, y = a[key], b[key]
        same = same_bits(x, y) if x.is_floating_point() else bool(torch.equal(x, y))
        all_same &= same
        print(f"{key} {tuple(x.shape)}: {'same bits' if same else 'DIFFERENT'}")
    return all_same


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("preset", nargs="?", help="a preset (multiview presets)")
    ap.add_argument("steps", nargs="?", type=int, help="training steps of each model")
    ap.add_argument("out", nargs="?", help="where to save the fingerprint (torch.save)")
    ap.add_argument("--compare", nargs=2, metavar=("A", "B"), help="compare two saved fingerprints")
    args = ap.parse_args()
    if args.compare:
        first, second = (torch.load(path, weights_only=True) for path in args.compare)
        return 0 if compare(first, second) else 1
    if args.preset is None or args.steps is None or args.out is None:
        ap.error("give PRESET STEPS OUT, or --compare A B")
    if args.steps < 1:
        ap.error(f"STEPS must be at least 1, got {args.steps}")
    from multiview.files import atomic_write
    from multiview.threads import use_threads

    use_threads(1)
    import multiview

    print(f"multiview from {Path(multiview.__file__).parent}")
    saved = fingerprint(args.preset, args.steps)
    atomic_write(Path(args.out), lambda handle: torch.save(saved, handle))
    print(f"saved: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
