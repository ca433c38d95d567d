"""The Python API: run the simulator, and load what runs and sweeps wrote, as pandas tables.

::

    import multiview

    res = multiview.simulate(preset="smoke", mu=0.2, n_seeds=4)   # a Results
    res.tidy                       # one row per model × method × stratum (multiview.tidy)
    res.results["bounds"]          # the results.json dict
    df = multiview.load("runs/sweeps/mu_rho")                      # a run folder or a sweep folder

:func:`simulate` takes a preset and overrides by config key: a bare name that one section alone
has (``mu``, ``q``), a dotted key passed as ``**{"data.mu": 0.2}``, or the dotted key with ``__``
for the dot (``data__mu=0.2``). :func:`load` reads a run folder (or its ``results.json``) or a
sweep folder (its finished units, the table ``multiview collect`` writes as ``tidy.*``). Importing
this module imports neither torch nor pandas; they are imported when a function runs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from multiview.config import SimConfig
    from multiview.progress import Reporter


@dataclass
class Results:
    """One run: its results (``results.json`` as a dict), the folder it was written to (``path``;
    None when nothing was written) and, built on first use, its tidy table (``tidy``)."""

    results: dict[str, Any]
    path: Path | None = None

    @functools.cached_property
    def tidy(self) -> pd.DataFrame:
        """One row per model × method × stratum (:mod:`multiview.tidy`)."""
        from multiview.tidy import tidy_frame

        return tidy_frame(self.results)

    @property
    def config(self) -> dict[str, Any]:
        return self.results["config"]

    @property
    def bounds(self) -> pd.DataFrame:
        """The theorem checks, one row each: name, measured, measured/μ, interval, verdict."""
        import pandas as pd

        rows = [
            {
                "check": b["name"],
                "measured": b["measured"],
                "measured_over_mu": b["measured_over_mu"],
                "ci95_seeds": b["ci95"]["seeds"],
                "ci95_binomial": b["ci95"]["binomial"],
                "passed": b["passed"],
                "claim": b["claim"],
            }
            for b in self.results.get("bounds", [])
        ]
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path is not None else ""
        done = [
            k for k in self.results if isinstance(self.results[k], dict) and "test_error" in self.results[k]
        ]
        return f"Results(config_hash={self.results.get('config_hash')!r}, methods={done}{where})"


def config_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """Keyword overrides as config keys: ``data__mu`` → ``data.mu``; other names as given."""
    return {key.replace("__", "."): value for key, value in overrides.items()}


def simulate(
    preset: str = "default",
    *,
    config: SimConfig | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    device: str = "auto",
    reporter: Reporter | None = None,
    log_dir: str | Path | None = None,
    jobs: int = 1,
    **overrides: Any,
) -> Results:
    """Run the simulator's protocol and return its :class:`Results`.

    ``config`` (a :class:`~multiview.config.SimConfig`) replaces the preset; ``overrides`` are
    applied on top (``mu=0.2``, ``n_seeds=4``, ``stages="single,ensemble"`` for
    ``protocol.stages``, ``data__n_test=5000``). With ``out`` the run writes its folder
    (``results.json``, ``tidy.*``, checkpoints; ``resume`` reuses finished stages). ``log_dir``
    adds a TensorBoard log (:mod:`multiview.trackers`). ``jobs`` > 1 runs stages side by side in
    that many processes, this process's torch threads shared out among them (the same numbers;
    a script needs the ``if __name__ == "__main__":`` guard of process pools). A bad key or value
    is a :class:`~multiview.settings.ConfigError` naming it.
    """
    from multiview.config import get_preset
    from multiview.device import resolve_device
    from multiview.progress import Reporters
    from multiview.protocol import run_protocol
    from multiview.trackers import open_tracker

    cfg = config if config is not None else get_preset(preset)
    keys = config_overrides(overrides)
    if "stages" in keys:
        keys["protocol.stages"] = keys.pop("stages")
    cfg = cfg.with_overrides(keys)
    dev = resolve_device(device, "device")
    results = run_protocol(
        cfg, dev, out, resume=resume, reporter=Reporters(reporter, open_tracker(log_dir)), jobs=jobs
    )
    return Results(results, Path(out) if out is not None else None)


def load(path: str | Path) -> pd.DataFrame:
    """The tidy table (one row per model × method × stratum, :mod:`multiview.tidy`) of a run folder
    (or its ``results.json``; a sweep unit's folder gets its swept values as columns) or of a sweep
    folder (every finished unit, with the swept values: :func:`multiview.sweep.collect.build_tidy`).
    A folder that is neither is a :class:`FileNotFoundError`, a missing, damaged or foreign
    ``results.json`` a :class:`~multiview.files.FileFormatError`; both say what was expected."""
    from multiview.files import read_json, read_results
    from multiview.tidy import cell, tidy_frame

    path = Path(path)
    if path.is_dir() and (path / "units").is_dir():
        from multiview.sweep.collect import build_tidy

        return build_tidy(path)
    if path.is_dir() and not (path / "results.json").exists():
        raise FileNotFoundError(
            f"{path}: neither a run folder (with results.json) nor a sweep folder (with units/)"
        )
    results = read_results(path)
    unit = (path if path.is_dir() else path.parent) / "unit.json"
    labels = {k: cell(v) for k, v in read_json(unit).get("params", {}).items()} if unit.is_file() else {}
    return tidy_frame(results, labels)
