"""Regenerate the golden values with an independent NumPy implementation of the formulas.

    python tests/golden/make_golden.py

The package is not imported: the values come straight from the paper's definitions, and the
intervals of ``stats.json`` straight from scipy.stats.
"""

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def smoothed_relu(z: float, q: int, r: float) -> float:
    if z <= 0:
        return 0.0
    if z <= r:
        return z**q / (q * r ** (q - 1))
    return z - (1 - 1 / q) * r


def log_softmax(a: np.ndarray) -> np.ndarray:
    a = a - a.max(-1, keepdims=True)
    return a - np.log(np.exp(a).sum(-1, keepdims=True))


def main() -> None:
    cases = []
    for q, r in [(4, 0.1), (3, 0.2), (6, 0.05), (1, 0.3), (5, 0.1)]:
        for z in [-0.5, -0.01, 0.0, 0.01, r / 2, r, r * 1.5, 2.0]:
            cases.append({"z": z, "q": q, "varrho": r, "value": smoothed_relu(z, q, r)})
    (HERE / "smoothed_relu.json").write_text(json.dumps({"smoothed_relu": cases}, indent=1))

    rng = np.random.default_rng(7)
    student = rng.normal(size=(2, 3, 4)) * 2
    teacher = rng.normal(size=(1, 3, 4)) * 2
    teacher[0, 0, 1] = 30.0  # beyond the truncation point 1/τ²
    student[1, 2, 0] = 25.0
    y = np.array([0, 2, 3])
    ce = -np.take_along_axis(log_softmax(student), np.broadcast_to(y[None, :, None], (2, 3, 1)), -1)[
        ..., 0
    ].sum(-1)
    t, temperature = 0.3, 4.0
    soft = np.exp(log_softmax(teacher / temperature))
    h = -(soft * log_softmax(student / temperature)).sum(-1).sum(-1)
    practical = t * ce + (1 - t) * temperature**2 * h
    tau = 0.25

    def truncated(a: np.ndarray) -> np.ndarray:
        return np.exp(log_softmax(np.minimum(tau * tau * a, 1.0) / tau))

    coef = np.minimum(truncated(student) - truncated(teacher), 0.0)
    golden = {
        "student": student.tolist(),
        "teacher": teacher.tolist(),
        "y": y.tolist(),
        "cross_entropy": ce.tolist(),
        "t": t,
        "temperature": temperature,
        "practical_kd": practical.tolist(),
        "tau": tau,
        "theory_kd_coefficient": coef.tolist(),
    }
    (HERE / "losses.json").write_text(json.dumps(golden, indent=1))
    (HERE / "stats.json").write_text(json.dumps(interval_cases(), indent=1))


def interval_cases() -> dict:
    """95 % intervals: of error counts k out of n test examples (Wilson, Clopper–Pearson), and of
    the mean over seeds (Student-t, BCa bootstrap with 9999 resamples from stream 0)."""
    from scipy import stats

    proportions = []
    for k, n in [(0, 100), (7, 100), (50, 100), (100, 100), (123, 20_000), (3, 7)]:
        test = stats.binomtest(k, n)
        wilson, exact = test.proportion_ci(0.95, "wilson"), test.proportion_ci(0.95, "exact")
        proportions.append(
            {"k": k, "n": n, "wilson": [wilson.low, wilson.high], "exact": [exact.low, exact.high]}
        )
    samples = [[0.1, 0.3, 0.2], [0.49, 0.52, 0.47, 0.5, 0.51], [0.01, 0.0, 0.03, 0.02, 0.0, 0.01, 0.05, 0.0]]
    seeds = []
    for xs in samples:
        a = np.asarray(xs)
        sem = a.std(ddof=1) / np.sqrt(len(a))
        t = stats.t.interval(0.95, len(a) - 1, loc=a.mean(), scale=sem)
        boot = stats.bootstrap(
            (a,), np.mean, confidence_level=0.95, n_resamples=9999, method="BCa", rng=np.random.default_rng(0)
        ).confidence_interval
        seeds.append({"values": xs, "t": [float(t[0]), float(t[1])], "bootstrap": [boot.low, boot.high]})
    return {"proportions": proportions, "seeds": seeds}


if __name__ == "__main__":
    main()
