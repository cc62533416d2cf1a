"""Helpers every ``osteon`` subcommand shares: one-line errors, warnings shown once, dataset loading.

Example:
    >>> @app.command()
    ... def summary(path: Path) -> None:
    ...     with handle_errors():
    ...         manifest = load_manifest(path)
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from osteon.errors import OsteonError

if TYPE_CHECKING:
    from osteon.data.manifest import Manifest

#: Exit status of a command stopped by bad input (an :class:`~osteon.errors.OsteonError`).
EXIT_USAGE = 2


def stderr_console() -> Console:
    """A rich console on stderr (progress, warnings, errors), so stdout stays parseable (``--json``)."""
    return Console(stderr=True)


def fail(message: str, *, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``Error: message`` as one red line on stderr and exit with ``code``."""
    one_line = " ".join(str(message).split())
    stderr_console().print(f"[bold red]Error:[/bold red] {escape(one_line)}", soft_wrap=True, highlight=False)
    raise typer.Exit(code)


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn Osteon's own errors (and refusals to overwrite a file) into one red line and exit status 2.

    Anything else is a bug and keeps its traceback. Usable as ``with handle_errors():`` or as a
    decorator (``@handle_errors()``).
    """
    try:
        yield
    except (OsteonError, FileExistsError) as exc:
        fail(str(exc))


@contextmanager
def show_warnings() -> Iterator[None]:
    """Print the Python warnings raised inside as yellow ``Warning:`` lines on stderr when the block ends.

    One line per distinct message (no file/line noise), in order of first appearance; a message raised
    several times says so (``(5 times)``). Deprecation warnings are for developers and are not shown.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            console = stderr_console()
            for text, count in distinct_warnings(caught).items():
                times = f" ({count} times)" if count > 1 else ""
                console.print(f"[yellow]Warning:[/yellow] {escape(text)}{times}", soft_wrap=True, highlight=False)


def distinct_warnings(caught: list[warnings.WarningMessage]) -> dict[str, int]:
    """Warning text (whitespace collapsed) → how often it was raised, in order of first appearance."""
    counts: dict[str, int] = {}
    for warning in caught:
        if issubclass(warning.category, DeprecationWarning):
            continue
        text = " ".join(str(warning.message).split())
        counts[text] = counts.get(text, 0) + 1
    return counts


def load_manifest(path: Path, *, format: str | None = None) -> Manifest:
    """Load a dataset for a command (``load_dataset``), showing the adapter's warnings as yellow lines."""
    from osteon.data.adapters import load_dataset

    with show_warnings():
        return load_dataset(path, format=format)
