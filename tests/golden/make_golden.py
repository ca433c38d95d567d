"""Regenerate the golden values with an independent NumPy implementation of the formulas.

    python tests/golden/make_golden.py

The package is not imported: the values come straight from the paper's definitions.
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


if __name__ == "__main__":
    main()
