"""Command line of sweeps: ``multiview sweep``, ``multiview collect`` and ``multiview plot phase``.

:func:`sweep` and :func:`collect` are registered on the main app by :mod:`multiview.cli`;
:data:`plot_app` is the ``multiview plot`` group (other figure commands attach to it too).
Heavy modules (torch, pandas, matplotlib, submitit) are imported only when a command runs.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from multiview.terminal import ThreadsOpt, fail, make_console, parse_device, writable_folder

if TYPE_CHECKING:
    from multiview.sweep.plan import Plan, SweepReport
    from multiview.sweep.spec import SweepSpec
    from multiview.sweep.store import SweepStore

console = make_console()

plot_app = typer.Typer(
    help="Figures: phase diagrams of a sweep, and figures of a run's results.json (PNG and PDF).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


class Backend(StrEnum):
    local = "local"
    slurm = "slurm"


class Cmap(StrEnum):
    cividis = "cividis"
    viridis = "viridis"


# --------------------------------------------------------------------------------------------
# multiview sweep
# --------------------------------------------------------------------------------------------


def sweep(
    spec_path: Annotated[
        Path, typer.Argument(metavar="SPEC", help="A sweep spec (.toml), or a sweep folder to resume.")
    ],
    backend: Annotated[Backend, typer.Option("--backend", "-b", help="Where units run.")] = Backend.local,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Sweep folder.", show_default="the spec's sweep.out"),
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Run units that failed before again.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Local: parallel units.", show_default="one per GPU, else one per core"),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            parser=parse_device,
            metavar="[auto|cpu|cuda[:N]]",
            help="Where units compute (overrides the spec's).",
            show_default="the spec's",
        ),
    ] = None,
    threads: ThreadsOpt = 0,
    wait: Annotated[
        bool, typer.Option(help="SLURM: wait for the jobs and report (else submit and exit).")
    ] = True,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print the plan (every unit and its state); write nothing, run nothing."
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
) -> None:
    """Run a sweep: every (point, master seed) of SPEC as one unit, skipping finished units.

    A unit is one resolved config whose S seeds train batched on one device; its result goes to
    [cyan]<sweep>/units/<config hash>/results.json[/cyan], written atomically. Re-running the same
    command resumes: finished units are skipped, interrupted ones re-run (from their last finished
    stage), failed ones only with --retry-failed. Backends: [bold]local[/bold] (this machine:
    one unit per GPU, else one per core with one thread each) and [bold]slurm[/bold] (one job
    array via submitit: pip install 'multiview\\[slurm]'; options in the spec's \\[slurm] table).
    --threads N gives every unit N threads (overriding the spec's \\[local] and \\[slurm] threads).

    Examples:

      multiview sweep scripts/sweeps/mu_rho.toml --dry-run

      multiview sweep scripts/sweeps/mu_rho.toml

      multiview sweep scripts/sweeps/mu_rho.toml --backend slurm

      multiview sweep runs/sweeps/mu_rho --retry-failed
    """
    from multiview.files import FileFormatError
    from multiview.sweep.plan import plan
    from multiview.sweep.spec import SpecError
    from multiview.sweep.store import SweepStore
    from multiview.threads import sleep_when_idle

    try:
        spec, root = _load(spec_path, out)
        if device is not None:
            spec.local.device = spec.slurm.device = device
        if workers is not None:
            spec.local.workers = workers
        if threads > 0:
            spec.local.threads = spec.slurm.threads = threads
        if not dry_run:
            writable_folder(root, "the sweep folder" if out is None else "--out")
        store = SweepStore(root)
        p = plan(spec, store, retry_failed, record=not dry_run)
    except (SpecError, FileFormatError) as exc:  # a bad spec, or a damaged plan.json of a sweep folder
        fail(f"SPEC {spec_path}: {exc}")
    except OSError as exc:
        fail(f"{exc.filename or spec_path}: {exc.strerror or exc}")
    _print_plan(spec, store, p, backend.value)
    if dry_run:
        _print_units(store, p)
        console.print("dry run: nothing was written or run", highlight=False)
        return
    sleep_when_idle()  # before torch is imported here or in the workers
    try:
        if backend is Backend.local:
            report = _run_local(spec, store, p, quiet)
        else:
            report = _run_slurm(spec, store, p, wait, quiet)
            if report is None:
                return
    except KeyboardInterrupt:
        from multiview.terminal import INTERRUPTED, note

        note(
            f"interrupted: finished units are kept in {store.root}; units in progress run again "
            f"(from their last finished stage). Go on with:\n  multiview sweep {store.root}"
        )
        raise typer.Exit(INTERRUPTED) from None
    _print_report(store, report)
    if not report.ok:
        raise typer.Exit(1)


def _load(spec_path: Path, out: Path | None) -> tuple[SweepSpec, Path]:
    from multiview.sweep.spec import load_spec
    from multiview.sweep.store import SweepStore

    if spec_path.is_dir():
        store = SweepStore(spec_path)
        if not store.is_sweep():
            from multiview.sweep.spec import SpecError

            raise SpecError(f"{spec_path} is a folder without spec.toml: give a sweep spec or a sweep folder")
        spec = load_spec(spec_path / "spec.toml", base_dir=store.spec_dir())
        return spec, out or spec_path
    spec = load_spec(spec_path)
    return spec, out or spec.out


def _print_plan(spec: SweepSpec, store: SweepStore, p: Plan, backend: str) -> None:
    n_points = len(p.units) // max(1, len(spec.seeds)) if spec.mode == "grid" else spec.samples
    swept = (
        ", ".join(
            f"{k} ({len(par.values) if par.values else 'random'})"
            for k, par in zip(spec.swept_keys, spec.parameters, strict=True)
        )
        or "nothing"
    )
    console.print(
        f"[bold]multiview sweep[/bold] {spec.name}: {len(p.units)} units = {n_points} points × "
        f"{len(spec.seeds)} master seeds; swept: {swept}; stages: {','.join(spec.base.protocol.stages)}",
        soft_wrap=True,
    )
    console.print(
        f"  folder {store.root}  backend {backend}  |  done {len(p.done)}  to run {len(p.run)}  "
        f"failed {len(p.failed)}{' (skipped; --retry-failed runs them)' if p.failed else ''}"
        f"{f'  running elsewhere {len(p.running)}' if p.running else ''}",
        soft_wrap=True,
        highlight=False,
    )


def _print_units(store: SweepStore, p: Plan) -> None:
    from rich.table import Table

    t = Table(title="Units", title_justify="left")
    for col in ("unit", "swept values", "seed", "state"):
        t.add_column(col)
    for u in p.units:
        t.add_row(u.key, " ".join(f"{k}={v}" for k, v in u.params.items()), str(u.seed), store.state(u.key))
    console.print(t)


def _run_local(spec: SweepSpec, store: SweepStore, p: Plan, quiet: bool) -> SweepReport:
    from multiview.progress import progress_display
    from multiview.sweep.local import layout, run_local

    if p.run:
        lay = layout(spec.local, len(p.run))
        console.print(
            f"  local: {lay.workers} worker(s) on {', '.join(sorted(set(lay.devices)))}, "
            f"{lay.threads} torch thread(s) each",
            soft_wrap=True,
        )
    if quiet or not p.run:
        return run_local(store.root, p.run, spec.local, spec.keep_stages)
    failed = 0
    with progress_display(console) as progress:
        task = progress.add_task("units", total=len(p.run), info="")

        def on_outcome(unit: Any, out: Any) -> None:
            nonlocal failed
            failed += out.state not in ("done", "cached", "busy")
            note = f"last: {unit.label()} {out.state} ({out.seconds:.1f} s)"
            if failed:
                note += f"  [red]{failed} failed[/red]"
            progress.update(task, advance=1, info=note)

        return run_local(store.root, p.run, spec.local, spec.keep_stages, on_outcome)


def _run_slurm(spec: SweepSpec, store: SweepStore, p: Plan, wait: bool, quiet: bool) -> SweepReport | None:
    from multiview.sweep import slurm

    try:
        attached, fresh = slurm.attach(store, p.run, spec.slurm)
        submitted = slurm.submit(store, fresh, spec.slurm, spec.keep_stages)
    except slurm.SlurmUnavailable as exc:
        fail(f"SLURM backend unavailable: {exc}")
    jobs = attached + submitted
    if attached:
        console.print(f"  re-attached to {len(attached)} task(s) still queued or running")
    if submitted:
        arrays = sorted({s.job_id.split("_")[0] for s in submitted})
        console.print(
            f"  submitted {len(submitted)} unit(s) as job array {', '.join(arrays)} "
            f"(partition {spec.slurm.partition or 'default'}, logs in {slurm.log_folder(store, spec.slurm)})",
            soft_wrap=True,
            highlight=False,
        )
    if not wait:
        console.print("  not waiting: rerun the same command to follow (finished units are skipped)")
        return None
    if not jobs:
        from multiview.sweep.plan import SweepReport

        return SweepReport(total=0)
    try:
        if quiet:
            return slurm.watch(store, jobs, spec.slurm.poll_s)
        from multiview.progress import progress_display

        with progress_display(console) as progress:
            task = progress.add_task("SLURM", total=len(jobs), info="submitted")

            def on_progress(counts: dict[str, int]) -> None:
                finished = counts.get("DONE", 0) + counts.get("FAILED", 0)
                note = "  ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items()) if v)
                progress.update(task, completed=finished, info=note)

            return slurm.watch(store, jobs, spec.slurm.poll_s, on_progress)
    except KeyboardInterrupt:
        from multiview.terminal import INTERRUPTED, note

        arrays = sorted({s.job_id.split("_")[0] for s in jobs})
        note(
            "stopped watching; the jobs keep running in SLURM "
            f"(rerun the command to follow them, or scancel {' '.join(arrays)})"
        )
        raise typer.Exit(INTERRUPTED) from None


def _print_report(store: SweepStore, report: SweepReport) -> None:
    from rich.panel import Panel

    secs = list(report.seconds.values())
    per = f", {sum(secs) / len(secs):.1f} s per unit" if secs else ""
    console.print(
        f"[bold]done[/bold]: computed {len(report.computed)}{per}; already done {len(report.skipped_done)}; "
        f"busy elsewhere {len(report.busy)}; problems {len(report.problems)}",
        soft_wrap=True,
    )
    for prob in report.problems:
        body = f"{prob.error}\n\n{prob.log}".strip() if prob.log else prob.error
        title = f"[red]{prob.state}[/red] {prob.unit.key}  {prob.unit.label()}"
        console.print(Panel(body, title=title, title_align="left"))
        if prob.log_path:
            console.print(f"  log: {prob.log_path}", soft_wrap=True, highlight=False)
    if report.problems:
        console.print(
            "failed units are skipped on the next run unless --retry-failed; units that ended "
            "without a result (cancelled, timed out, node lost) run again on the next run"
        )
    console.print(f"table: multiview collect {store.root}", soft_wrap=True, highlight=False)


# --------------------------------------------------------------------------------------------
# multiview collect
# --------------------------------------------------------------------------------------------


def collect(
    sweep_dir: Annotated[
        Path, typer.Argument(metavar="SWEEP_DIR", help="A sweep folder (from multiview sweep).")
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output path without extension.", show_default="SWEEP_DIR/table"),
    ] = None,
    tidy_out: Annotated[
        Path | None,
        typer.Option(
            "--tidy-out", help="Path without extension of the per-model table.", show_default="SWEEP_DIR/tidy"
        ),
    ] = None,
    formats: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="Comma-separated: csv, parquet (Parquet needs pyarrow: pip install 'multiview\\[parquet]').",
            show_default="csv, and parquet when pyarrow is installed",
        ),
    ] = None,
    include_unfinished: Annotated[
        bool, typer.Option("--all", help="Also list units not finished (their metrics are empty).")
    ] = False,
) -> None:
    """The tables of a sweep: a row per unit (table.*), and a row per model (tidy.*).

    table: each unit's swept values, seed, metrics and full config. Metrics (means over the unit's
    S models): single-view error of single models, error of each method, ensemble / KD / self-KD /
    training-average gains (err(single) − err(method)), the fraction of classes with exactly one
    view learned, lottery agreement, bound pass rate and wall time.

    tidy: one row per model × method × stratum (all, multi-view, single-view test examples) of
    every finished unit, with the swept values, master seed, model index, error, err/μ, views
    learned, convergence and steps: what error bars over seeds and master seeds come from
    (the same rows as each unit's tidy.csv). Both written as CSV, and as Parquet too when pyarrow
    is installed.

    Example: multiview collect runs/sweeps/mu_rho
    """
    from multiview.sweep.collect import TABLE_FORMATS, build_table, build_tidy, have_parquet, write_table

    if formats is None:
        fmts: tuple[str, ...] = ("csv", "parquet") if have_parquet() else ("csv",)
    else:
        fmts = tuple(f.strip().lower() for f in formats.split(",") if f.strip())
        unknown = [f for f in fmts if f not in TABLE_FORMATS]
        if unknown or not fmts:
            fail(f"--format {formats!r}: use csv and/or parquet, comma-separated")
        if "parquet" in fmts and not have_parquet():
            fail("--format parquet needs pyarrow: pip install 'multiview[parquet]' (or use --format csv)")
    try:
        df = build_table(sweep_dir, include_unfinished)
        tidy = build_tidy(sweep_dir)
    except (FileNotFoundError, ValueError) as exc:
        fail(f"SWEEP_DIR {sweep_dir}: {exc}")
    try:
        paths = write_table(df, out or sweep_dir / "table", fmts)
        paths += write_table(tidy, tidy_out or sweep_dir / "tidy", fmts)
    except OSError as exc:
        fail(f"{exc.filename or out}: {exc.strerror or exc}")
    console.print(f"{len(df)} units × {len(df.columns)} columns; {len(tidy)} rows of models")
    for path in paths:
        console.print(f"wrote {path}", soft_wrap=True, highlight=False)
    if formats is None and "parquet" not in fmts:
        console.print(
            "no Parquet file: pyarrow is not installed (pip install 'multiview\\[parquet]'); "
            "the CSV holds the same table",
            soft_wrap=True,
        )


# --------------------------------------------------------------------------------------------
# multiview plot phase
# --------------------------------------------------------------------------------------------


@plot_app.command("phase")
def phase(
    sweep_dir: Annotated[
        Path, typer.Argument(metavar="SWEEP_DIR", help="A sweep folder (from multiview sweep).")
    ],
    x: Annotated[str, typer.Option("--x", help="Swept parameter on the x axis (mu or data.mu).")],
    y: Annotated[str, typer.Option("--y", help="Swept parameter on the y axis.")],
    metric: Annotated[
        str, typer.Option("--metric", "-m", help="A metric column of multiview collect.")
    ] = "ensemble_gain",
    where: Annotated[
        list[str] | None,
        typer.Option("--where", "-w", help="Pin another swept parameter: KEY=VALUE; repeatable."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder.", show_default="SWEEP_DIR/figures")
    ] = None,
    formats: Annotated[
        str, typer.Option("--format", "-f", help="Comma-separated, e.g. png,pdf.")
    ] = "png,pdf",
    cmap: Annotated[Cmap, typer.Option(help="Colour map (both colour-blind safe).")] = Cmap.cividis,
    title: Annotated[
        str | None, typer.Option(help="Title.", show_default="the metric and the seed count")
    ] = None,
) -> None:
    """Phase diagram: a metric over two swept parameters, averaged over master seeds.

    Metrics: single_view_error (single models), ensemble_gain, kd_gain, self_kd_gain,
    training_average_gain, exactly_one_fraction, lottery_agreement, bound_pass_rate, error_<method>,
    wall_seconds. Writes SWEEP_DIR/figures/phase_<metric>_<x>_<y>.png and .pdf.

    Example: multiview plot phase runs/sweeps/mu_rho --x mu --y rho --metric ensemble_gain
    """
    from multiview.config import SimConfig
    from multiview.plots.style import parse_formats
    from multiview.settings import ConfigError, parse_assignment
    from multiview.sweep.collect import build_table
    from multiview.sweep.phase import PhaseError, phase_grid, plot_phase

    def key(name: str, hint: str) -> str:
        try:
            return SimConfig.resolve_key(name)
        except ConfigError as exc:
            fail(f"{hint} {name}: {exc}")

    pins: dict[str, Any] = {}
    for item in where or []:
        try:
            k, v = parse_assignment(item)
        except ConfigError as exc:
            fail(f"--where: {exc}")
        pins[key(k, "--where")] = v
    try:
        fmts = tuple(parse_formats(formats))
    except ValueError as exc:
        fail(f"--format {exc}")
    try:
        df = build_table(sweep_dir)
    except (FileNotFoundError, ValueError) as exc:
        fail(f"SWEEP_DIR {sweep_dir}: {exc}")
    try:
        grid = phase_grid(df, key(x, "--x"), key(y, "--y"), metric, pins)
    except PhaseError as exc:
        fail(str(exc))
    folder = out or sweep_dir / "figures"
    writable_folder(folder)
    try:
        paths = plot_phase(grid, folder, fmts, cmap.value, title)
    except PhaseError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{exc.filename or folder}: {exc.strerror or exc}")
    for path in paths:
        console.print(f"wrote {path}", soft_wrap=True, highlight=False)
