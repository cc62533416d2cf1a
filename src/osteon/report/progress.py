"""The progress display of ``osteon report``: one line on stderr naming the step being built, with a bar.

Building a report reads the run, runs the data checks, bootstraps subgroup intervals, computes
class-activation maps for the gallery and checks them: minutes on a large run. The display is drawn on
stderr (stdout carries the report's path) and only on a terminal; it disappears when the report is written.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


def make_console() -> Console:
    """The console the display draws on (stderr)."""
    return Console(stderr=True)


class ReportProgress:
    """Steps of one report on a rich progress bar (a no-op when disabled).

    Example:
        >>> with ReportProgress(enabled=False) as progress:
        ...     progress.add(2)
        ...     progress.step("reading the run")
        ...     progress.step("writing report.html")
    """

    def __init__(self, *, enabled: bool = True, total: int = 0) -> None:
        self.enabled = enabled
        self._total = total
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._started = False

    def __enter__(self) -> ReportProgress:
        if self.enabled:
            console = make_console()
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]report[/bold] {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
                disable=not console.is_terminal,
            )
            self._progress.start()
            self._task = self._progress.add_task("starting", total=self._total or None)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._progress is not None:
            if error is None and self._task is not None:
                self._progress.update(self._task, completed=self._total)
            self._progress.stop()

    def add(self, steps: int) -> None:
        """Announce ``steps`` more steps (the bar's total grows as the work becomes known)."""
        self._total += steps
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=self._total)

    def step(self, description: str) -> None:
        """Finish the current step (if any) and show ``description`` as the next one."""
        if self._progress is None or self._task is None:
            return
        self._progress.update(self._task, description=description, advance=1 if self._started else 0)
        self._started = True
        self._progress.refresh()  # each step is drawn at least once, however short
