"""What a run reports as it goes (:class:`Reporter`), and the progress bars that show it.

Both protocols report through one :class:`Reporter` (silent by default): the simulator its
stages and the training steps inside them, CIFAR its stages and each model; both the header of
their results, each stage's part of them and the finished results. :class:`RichReporter` draws
the progress on a rich console for the command lines; a tracker is another reporter
(:mod:`multiview.trackers`), and :class:`Reporters` hands every report to several. rich is
imported on use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress


class Reporter:
    """Receives a run's progress; silent by default.

    ``run_started``: the header of the results is known (``config``, ``config_hash``,
    ``environment``, ``data``); ``stage_started``: a stage, or one training inside it, begins
    (``total``: its steps in the simulator, its models in CIFAR); ``step``: a simulator training
    step (``loss``: the largest loss of the runs still training); ``model_*``: a CIFAR model
    starts, advances, ends; ``stage_result``: a stage's part of ``results.json`` (with its
    histories: loss, Λ, ... per logged step); ``stage_finished``: a stage ends (``cached``: loaded
    from its checkpoint); ``run_finished``: the complete results.
    """

    def run_started(self, header: dict[str, Any]) -> None: ...

    def stage_started(self, stage: str, total: int) -> None: ...

    def step(self, stage: str, step: int, total: int, active: int, loss: float) -> None: ...

    def model_started(self, stage: str, index: int, label: str) -> None: ...

    def model_progress(
        self, stage: str, index: int, step: int, total: int, images_per_second: float
    ) -> None: ...

    def model_finished(
        self, stage: str, index: int, accuracy: float, seconds: float, cached: bool
    ) -> None: ...

    def stage_result(self, stage: str, part: dict[str, Any], cached: bool) -> None: ...

    def stage_finished(self, stage: str, seconds: float, cached: bool = False) -> None: ...

    def run_finished(self, results: dict[str, Any]) -> None: ...


HOOKS = tuple(name for name in vars(Reporter) if not name.startswith("_"))
"""The names of the reports a :class:`Reporter` receives."""


class Reporters(Reporter):
    """Hands every report to each of ``reporters`` in turn (progress bars and a tracker); None
    entries are left out."""

    def __init__(self, *reporters: Reporter | None) -> None:
        self.reporters = tuple(r for r in reporters if r is not None)


def _forward(name: str) -> Any:
    def forward(self: Reporters, *args: Any, **kwargs: Any) -> None:
        for reporter in self.reporters:
            getattr(reporter, name)(*args, **kwargs)

    forward.__name__ = name
    return forward


for _hook in HOOKS:
    setattr(Reporters, _hook, _forward(_hook))


def progress_display(console: Console, transient: bool = False) -> Progress:
    """Progress bars with a bold description, done / total, a free ``info`` field (pass
    ``info=...`` to ``add_task``) and the elapsed time; ``transient`` ones vanish when stopped."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )


class RichReporter(Reporter):
    """A bar per stage (or simulator training) that stays; a bar per CIFAR model with its images
    per second, replaced by a line with its test accuracy when it ends; a line per stage loaded
    from its checkpoint or run without a bar."""

    def __init__(self, console: Console) -> None:
        self.progress = progress_display(console)
        self.tasks: dict[str, Any] = {}
        self.model: Any = None
        self.label = ""

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def stage_started(self, stage: str, total: int) -> None:
        self.tasks[stage] = self.progress.add_task(stage, total=total, info="")

    def step(self, stage: str, step: int, total: int, active: int, loss: float) -> None:
        task = self.tasks.get(stage)
        if task is None:
            return
        if step % 10 == 0 or active == 0 or step == total:
            self.progress.update(task, completed=step, info=f"loss {loss:.4f}  running {active}")
        if active == 0:
            self.progress.update(task, completed=total, info=f"loss {loss:.4f}  converged")

    def model_started(self, stage: str, index: int, label: str) -> None:
        self.label = label
        if self.model is not None:
            self.progress.remove_task(self.model)
        self.model = self.progress.add_task(label, total=None, info="")

    def model_progress(self, stage: str, index: int, step: int, total: int, images_per_second: float) -> None:
        if self.model is not None:
            self.progress.update(
                self.model, completed=step, total=total, info=f"{images_per_second:,.0f} img/s"
            )

    def model_finished(self, stage: str, index: int, accuracy: float, seconds: float, cached: bool) -> None:
        if self.model is not None:
            self.progress.remove_task(self.model)
            self.model = None
        if stage in self.tasks:
            self.progress.advance(self.tasks[stage])
        how = "loaded from its checkpoint" if cached else f"{seconds:.1f} s"
        self.progress.console.print(
            f"  {self.label}: test accuracy {100 * accuracy:.2f}%  [dim]({how})[/dim]"
        )

    def stage_finished(self, stage: str, seconds: float, cached: bool = False) -> None:
        if cached:
            self.progress.console.print(
                f"[dim]{stage}: loaded from checkpoint ({seconds:.1f} s when computed)[/dim]"
            )
        elif stage not in self.tasks:
            self.progress.console.print(f"[dim]{stage}: {seconds:.1f} s[/dim]")
