"""The simulator's protocol (spec §5, §7): its driver, its checkpoints, and the entry points.

:func:`run_protocol` runs the stages a config asks for (:mod:`multiview.methods`: the paper's
methods; :mod:`multiview.fixed_features`: the random-feature and NTK baselines) on one
:class:`~multiview.run.Run`, through the skeleton of :mod:`multiview.driver`, and adds the learned
views and the theorem checks (:mod:`multiview.bounds`) to the results. Every stage writes its
tensors to ``<out>/stages/<name>.pt`` with the key :func:`stage_hash`; a resumed run loads the
stages whose key still matches. :func:`load_stage` and :func:`run_stage` let a script rerun one
stage on a cached prerequisite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from multiview import bounds, fixed_features, methods, stages
from multiview.config import SimConfig
from multiview.driver import Driver, load_tensors, stage_function
from multiview.files import digest
from multiview.progress import Reporter
from multiview.provenance import host_environment
from multiview.run import Run

STAGE_MODULES = (methods, fixed_features)
"""Where the simulator's stage functions are defined (importing them registers them)."""


def run_protocol(
    cfg: SimConfig,
    device: str | torch.device = "cpu",
    out_dir: str | Path | None = None,
    resume: bool = False,
    reporter: Reporter | None = None,
    labels: dict[str, Any] | None = None,
    jobs: int = 1,
) -> dict[str, Any]:
    """Run the protocol's stages for ``cfg`` and return the results dict (``results.json``).

    With ``out_dir``, writes ``config.toml``, ``results.json`` and its tidy table (after every
    stage; ``labels`` are extra columns of the table) and one checkpoint per stage; with
    ``resume``, stages whose checkpoint matches :func:`stage_hash` are loaded instead of
    recomputed. With ``jobs`` > 1, stages run side by side in that many worker processes, each
    with torch's threads of this process shared out (:class:`multiview.driver.Driver`): the
    same numbers as in one process.
    """
    cfg.validate()
    return SimulationDriver(cfg, torch.device(device), out_dir, resume, reporter, labels, jobs).run()


def stage_hash(cfg: SimConfig, name: str) -> str:
    """The key a stage's checkpoint must match to be reused: the config outside [protocol] and
    the [protocol] settings that stage depends on (its registry row's ``keys``), so a resumed run
    with, say, other KD settings reuses the single models."""
    protocol = {key: getattr(cfg.protocol, key) for key in stages.get(stages.SYNTHETIC, name).keys}
    return digest({"config": cfg.config_hash(exclude=("protocol",)), "protocol": protocol}, compact=False)


def run_stage(run: Run, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one stage on ``run`` (its prerequisites' tensors must be in ``run.tensors``)."""
    return stage_function(stages.SYNTHETIC, name)(run)


def load_stage(path: str | Path, cfg: SimConfig, name: str) -> dict[str, Any]:
    """The tensors of a stage checkpoint written for ``cfg``; a checkpoint of another config is a
    :class:`ValueError`."""
    saved = load_tensors(path)
    if saved.get("config_hash") != stage_hash(cfg, name):
        raise ValueError(f"{path}: the {name} checkpoint was written for another config")
    return saved["tensors"]


class SimulationDriver(Driver):
    """The driver of :func:`run_protocol`: one :class:`Run`, per-stage checkpoints, and the learned
    views and theorem checks at every finish."""

    protocol = stages.SYNTHETIC

    def __init__(
        self,
        cfg: SimConfig,
        device: torch.device,
        out_dir: str | Path | None,
        resume: bool,
        reporter: Reporter | None,
        labels: dict[str, Any] | None = None,
        jobs: int = 1,
    ):
        super().__init__(cfg, out_dir, resume, reporter, labels, jobs)
        self.device = device

    def prepare(self) -> dict[str, Any]:
        run = self.context = Run.create(self.cfg, self.device, self.reporter)
        return {
            "config": self.cfg.to_dict(),
            "config_hash": self.cfg.config_hash(),
            "environment": {
                **environment(run.device, run.dtype),
                "jobs": self.jobs,
                "threads_per_job": self.worker_threads,
            },
            "data": data_summary(run),
        }

    def checkpoint_key(self, stage: str) -> str:
        return stage_hash(self.cfg, stage)

    def worker_driver(self) -> tuple[Any, tuple[Any, ...]]:
        return worker_driver, (self.cfg.to_dict(), str(self.device))

    def keep(self, stage: str, tensors: dict[str, Any]) -> None:
        self.context.tensors[stage] = tensors

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "single" in self.results:
            out["views"] = self.results["single"]["views"]
        out["bounds"] = bounds.check(self.results, self.cfg)
        out["unconverged"] = unconverged(self.results)
        return out


def worker_driver(config: dict[str, Any], device: str) -> SimulationDriver:
    """The driver of a worker process (``jobs`` > 1): the run's config, no folder, no reporter."""
    return SimulationDriver(SimConfig.from_dict(config), torch.device(device), None, False, None)


def unconverged(results: dict[str, Any]) -> dict[str, int]:
    """Stages whose models used their whole step budget with the loss still above its threshold:
    stage (``random_features.kd`` for a baseline's method) → how many models (``not_converged``)."""
    out: dict[str, int] = {}
    for stage in stages.of(stages.SYNTHETIC):
        part = results.get(stage.name)
        if not isinstance(part, dict):
            continue
        parts = (
            {stage.name: part}
            if stage.kind == stages.METHOD
            else {f"{stage.name}.{key}": value for key, value in part.items()}
        )
        for key, value in parts.items():
            n = value.get("not_converged", 0) if isinstance(value, dict) else 0
            if n:
                out[key] = n
    return out


def environment(device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """What the run was made with (:func:`multiview.provenance.host_environment`) and its dtype."""
    return {**host_environment(device), "dtype": str(dtype).replace("torch.", "")}


def data_summary(run: Run) -> dict[str, Any]:
    """How many examples of each kind the run drew, and the noise norms."""
    c = run.cfg.data
    return {
        "n_train": c.n_train,
        "n_test": c.n_test,
        "train_single_view": int(run.train.single.sum()),
        "test_single_view": int(run.test.single.sum()),
        "test_single_view_fraction": float(run.test.single.float().mean()),
        "capped_fraction_train": float(run.train.capped.float().mean()),
        "capped_fraction_test": float(run.test.capped.float().mean()),
        "noise_norm_feature_patch": c.sigma_p * c.d**0.5,
        "noise_norm_nonfeature_patch": c.sigma_nonfeature_resolved * c.d**0.5,
        "sigma_nonfeature": c.sigma_nonfeature_resolved,
        "weight_dim": run.dist.weight_dim(c.n_train),
    }
