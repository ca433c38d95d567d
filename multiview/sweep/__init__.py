"""Parameter sweeps: many configurations, each run as one unit of work, stored so nothing is lost.

A *sweep spec* (TOML, :mod:`multiview.sweep.spec`) names a base preset or config, the swept
parameters (a grid, or random samples), the master seeds and the protocol stages. It expands into
*units*: one resolved :class:`~multiview.config.SimConfig` (with its master seed) whose S model
seeds are trained batched on one device. Units are keyed by ``SimConfig.config_hash()`` and stored
under ``<sweep dir>/units/<hash>/`` (:mod:`multiview.sweep.store`); a unit whose result is already
there is skipped, so re-running a sweep resumes it.

Backends: :mod:`multiview.sweep.local` (one process, or a process pool sized to the machine, one
unit per GPU where there are GPUs) and :mod:`multiview.sweep.slurm` (a SLURM job array through
``submitit``). :mod:`multiview.sweep.collect` builds one table of every unit;
:mod:`multiview.sweep.phase` draws phase diagrams from it.
"""

from __future__ import annotations

from multiview.sweep.spec import SpecError, SweepSpec, Unit, load_spec, parse_spec

__all__ = ["SpecError", "SweepSpec", "Unit", "load_spec", "parse_spec"]
