"""Teacher (ensemble) logits on the training set of the paper preset: scale, and tempered probs."""

import math
import sys

import torch

from multiview.config import get_preset
from multiview.data import MultiViewDistribution
from multiview.driver import load_tensors
from multiview.losses import truncated_tempered_probs

cfg = get_preset("paper")
dist = MultiViewDistribution(cfg.data, cfg.seed)
tr = dist.sample(cfg.data.n_train, "train", torch.device("cpu"), torch.float32)
s = load_tensors(sys.argv[1] if len(sys.argv) > 1 else "runs/paper-try1/stages/single.pt")["tensors"]
L = s["train_logits"]
G = L.mean(0)
y = tr.y
single = tr.single
tau = 1 / math.log(10) ** 2
for name, X in (("teacher G", G), ("single seed0", L[0])):
    own = X.gather(1, y[:, None]).squeeze(1)
    oth = X.scatter(1, y[:, None], float("-inf")).max(1).values
    mean_other = (X.sum(1) - own) / 9
    for grp, m in (("multi", ~single), ("single", single)):
        print(
            f"{name:12s} {grp:6s} F_y mean {own[m].mean():6.2f} [{own[m].min():.2f},{own[m].max():.2f}]  "
            f"max wrong {oth[m].mean():6.2f}  mean wrong {mean_other[m].mean():6.2f}"
        )
for scale in (1, 2, 4, 8):
    p = truncated_tempered_probs(G * scale, tau)
    ps = truncated_tempered_probs(L * scale, tau)
    py = p.gather(1, y[:, None]).squeeze(1)
    pys = ps.gather(2, y.expand(10, -1)[..., None]).squeeze(-1)
    student_py = truncated_tempered_probs(L, tau).gather(2, y.expand(10, -1)[..., None]).squeeze(-1)
    print(
        f"scale {scale}: teacher tempered p_y multi {py[~single].mean():.3f} single {py[single].mean():.3f}; "
        f"single-model (unscaled students) p_y multi {student_py[:, ~single].mean():.3f}"
    )
