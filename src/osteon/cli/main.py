"""The ``osteon`` command: wires the subcommand modules into one Typer app."""

from __future__ import annotations

import typer

from osteon.cli import data as data_cli

app = typer.Typer(
    name="osteon",
    help="Deep learning on musculoskeletal images: data checks, training, evaluation, prediction.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_cli.app, name="data")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
