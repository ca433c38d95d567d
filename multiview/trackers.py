"""Experiment trackers on the reporter hook: a TensorBoard writer, and how to write another.

A tracker is a :class:`~multiview.progress.Reporter`, given to a run beside the progress bars
(:class:`~multiview.progress.Reporters`). :class:`TensorBoardReporter` (``--log-dir DIR`` of
``multiview simulate`` and ``multiview cifar``; ``pip install 'multiview[tensorboard]'``) writes,
under the stage's name:

* ``<stage>/loss`` over training steps as the simulator trains (the largest loss of the runs
  still training), and at the stage's end, from its history (:data:`HISTORY_SCALARS`), the mean
  over models of the loss and training accuracy, the Λ of the winning and of the losing view
  (Λ_{i,ℓ}(t) = max_r ⟨w_{i,r}(t), v_{i,ℓ}⟩, averaged over models and classes; the winner is the
  view with the larger Λ at the end) and, for students, the fraction of classes whose two views
  they know, per logged step;
* at the stage's end its test error per stratum (mean over models), the fractions of classes
  with both, one and no view learned and a histogram of views learned per class; CIFAR's test
  accuracy and final training loss per model (x axis: the model's index);
* when the run is complete, its settings and final metrics (``add_hparams``: the mean test error
  and err/μ of every method, the theorem checks passed) for TensorBoard's HParams view.

The simulator's stages report Λ in their histories only (every ``train.log_every`` steps), so Λ is
written when a stage ends. Another tracker is a small adapter: subclass
:class:`~multiview.progress.Reporter` and implement the reports it wants (``docs/results.md`` has
a Weights & Biases sketch); :func:`stage_scalars` and :func:`final_metrics` give the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from multiview.progress import Reporter
from multiview.stats import nanmean

HISTORY_SCALARS = ("loss", "train_accuracy", "both_fraction")
"""Per-step curves of a stage's history written as their mean over models."""


class TrackerUnavailable(RuntimeError):
    """A tracker was asked for whose package is not installed; the message says what to install."""


def open_tracker(log_dir: str | Path | None) -> TensorBoardReporter | None:
    """A :class:`TensorBoardReporter` writing to ``log_dir`` (None without one); a
    :class:`TrackerUnavailable` without the tensorboard package."""
    return None if log_dir is None else TensorBoardReporter(log_dir)


def tensorboard_writer(log_dir: str | Path) -> Any:
    """A ``torch.utils.tensorboard.SummaryWriter`` on ``log_dir``; without the tensorboard package,
    a :class:`TrackerUnavailable` saying how to install it."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise TrackerUnavailable(
            "--log-dir writes TensorBoard logs and needs the tensorboard package: "
            "pip install 'multiview[tensorboard]'"
        ) from None
    return SummaryWriter(log_dir=str(log_dir))


# --------------------------------------------------------------------------------------------
# What is logged (tracker-independent)
# --------------------------------------------------------------------------------------------


def tag(stage: str) -> str:
    """A stage's name as a tag prefix (``rf:single`` → ``rf/single``)."""
    return stage.replace(":", "/")


def history_scalars(history: dict[str, Any]) -> Iterator[tuple[str, int, float]]:
    """(name, step, value) of a stage's history: :data:`HISTORY_SCALARS` (T, R) and the Λ of the
    winning and losing views (T, R, k, 2), each the mean over models (and classes)."""
    steps = history.get("step") or []
    for name in HISTORY_SCALARS:
        for step, values in zip(steps, history.get(name) or [], strict=False):
            yield name, step, nanmean(values)
    Lambda = history.get("Lambda")
    if not Lambda or not steps:
        return
    final = Lambda[-1]  # (R, k, 2): the winner is the larger Λ at the end
    winner = [[int(views[1] > views[0]) for views in model] for model in final]
    for step, per_model in zip(steps, Lambda, strict=False):
        won = [
            views[w]
            for model, ws in zip(per_model, winner, strict=True)
            for views, w in zip(model, ws, strict=True)
        ]
        lost = [
            views[1 - w]
            for model, ws in zip(per_model, winner, strict=True)
            for views, w in zip(model, ws, strict=True)
        ]
        yield "Lambda_winning", step, nanmean(won)
        yield "Lambda_losing", step, nanmean(lost)


def stage_scalars(part: dict[str, Any]) -> dict[str, float]:
    """The end-of-stage numbers of a stage's part: mean test error per stratum, test accuracy
    (CIFAR) and the fractions of classes with both / one / no view learned."""
    out: dict[str, float] = {}
    for stratum, values in (part.get("test_error") or {}).items():
        out[f"test_error/{stratum}"] = nanmean(values)
    if isinstance(part.get("test_accuracy"), list):
        out["test_accuracy_mean"] = nanmean(part["test_accuracy"])
    views = part.get("views") or {}
    for key, name in (("both_fraction", "both"), ("exactly_one_fraction", "one"), ("none_fraction", "none")):
        if isinstance(views.get(key), (int, float)):
            out[f"views/{name}"] = float(views[key])
    return out


def views_per_class(part: dict[str, Any]) -> list[int]:
    """How many views (0, 1, 2) each (model, class) learned, from ``views.learned`` (R, k, 2)."""
    learned = (part.get("views") or {}).get("learned") or []
    return [sum(bool(v) for v in views) for model in learned for views in model]


def sub_parts(stage: str, part: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The stage's part, or, for a fixed-feature family, each of its methods (``ntk/kd``)."""
    if "test_error" in part or "history" in part:
        yield stage, part
        return
    for name, sub in part.items():
        if isinstance(sub, dict) and "test_error" in sub:
            yield f"{stage}/{name}", sub


def hyperparameters(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The config flattened to ``section.key`` → a number, flag or text (lists as text)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(hyperparameters(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = str(value)
    return out


def final_metrics(results: dict[str, Any]) -> dict[str, float]:
    """The mean test error (and err/μ, the simulator) of every method with models, and the
    theorem checks passed out of those judged."""
    from multiview.tidy import tidy_frame

    df = tidy_frame(results)
    out: dict[str, float] = {}
    for (learner, method), group in df[df["stratum"] == "all"].groupby(["learner", "method"], sort=False):
        name = method if learner == "cnn" or results.get("mode") == "cifar" else f"{learner}.{method}"
        out[f"error/{name}"] = float(group["error"].mean())
        if not group["error_over_mu"].isna().all():
            out[f"error_over_mu/{name}"] = float(group["error_over_mu"].mean())
    judged = [b for b in results.get("bounds", []) if b.get("passed") is not None]
    if judged:
        out["bounds/passed"] = float(sum(bool(b["passed"]) for b in judged))
        out["bounds/judged"] = float(len(judged))
    return out


# --------------------------------------------------------------------------------------------
# TensorBoard
# --------------------------------------------------------------------------------------------


class TensorBoardReporter(Reporter):
    """Writes a run's curves, end-of-stage numbers and hyper-parameters to a TensorBoard log in
    ``log_dir`` (see the module). ``every``: write the live loss every so many steps."""

    def __init__(self, log_dir: str | Path, every: int = 10) -> None:
        self.writer = tensorboard_writer(log_dir)
        self.every = every

    def run_started(self, header: dict[str, Any]) -> None:
        env = header.get("environment") or {}
        text = "\n".join(f"    {k}: {v}" for k, v in hyperparameters(env).items())
        self.writer.add_text("environment", text)

    def step(self, stage: str, step: int, total: int, active: int, loss: float) -> None:
        if step % self.every == 0 or active == 0 or step == total:
            self.writer.add_scalar(f"{tag(stage)}/loss", loss, step)

    def model_finished(self, stage: str, index: int, accuracy: float, seconds: float, cached: bool) -> None:
        self.writer.add_scalar(f"{tag(stage)}/test_accuracy", accuracy, index)

    def stage_result(self, stage: str, part: dict[str, Any], cached: bool) -> None:
        for name, sub in sub_parts(tag(stage), part):
            for key, step, value in history_scalars(sub.get("history") or {}):
                self.writer.add_scalar(f"{name}/history/{key}", value, step)
            for key, value in stage_scalars(sub).items():
                if not math.isnan(value):
                    self.writer.add_scalar(f"{name}/{key}", value)
            counts = views_per_class(sub)
            if counts:
                import numpy as np

                edges = np.array([-0.5, 0.5, 1.5, 2.5])
                self.writer.add_histogram(f"{name}/views_per_class", np.array(counts), bins=edges)
            losses = sub.get("final_train_loss")
            if isinstance(losses, list):  # CIFAR: one value per model
                for index, value in enumerate(losses):
                    self.writer.add_scalar(f"{name}/final_train_loss", value, index)
        self.writer.flush()

    def run_finished(self, results: dict[str, Any]) -> None:
        metrics = {f"hparam/{k}": v for k, v in final_metrics(results).items() if not math.isnan(v)}
        self.writer.add_hparams(hyperparameters(results.get("config", {})), metrics, run_name=".")
        self.close()

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
