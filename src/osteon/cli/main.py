"""The ``osteon`` command: wires the subcommand modules into one Typer app."""

from __future__ import annotations

import typer

from osteon.cli import data as data_cli
from osteon.cli.evaluate import evaluate_command
from osteon.cli.explain import explain_command
from osteon.cli.predict import predict_command
from osteon.cli.report import report_command
from osteon.cli.train import train_command

app = typer.Typer(
    name="osteon",
    help="Deep learning on musculoskeletal images: data checks, training, evaluation, prediction.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_cli.app, name="data")
app.command("train")(train_command)
app.command("evaluate")(evaluate_command)
app.command("predict")(predict_command)
app.command("explain")(explain_command)
app.command("report")(report_command)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
