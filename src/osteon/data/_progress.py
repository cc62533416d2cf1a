"""A progress bar for the data layer's per-file loops, drawn on stderr so stdout stays clean (``--json``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")


def track(items: Iterable[T], *, total: int, description: str, enabled: bool = True) -> Iterator[T]:
    """Yield ``items`` while drawing a transient rich progress bar on stderr.

    Args:
        items: What to iterate over.
        total: Number of items (for the bar's length).
        description: Text left of the bar (``"hashing"``, ``"decoding"`` ...).
        enabled: False yields the items without drawing anything (tests, ``--json``, tiny inputs).

    Yields:
        The items of ``items``, unchanged.
    """
    if not enabled or total == 0:
        yield from items
        return
    console = Console(stderr=True)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)
