"""The ``osteon`` command: wires the subcommand modules into one Typer app."""

from __future__ import annotations

import typer

from osteon.cli import data as data_cli
from osteon.cli import exam as exam_cli
from osteon.cli import pacs as pacs_cli
from osteon.cli import pipeline as pipeline_cli
from osteon.cli.cv import cv_command, ensemble_command
from osteon.cli.evaluate import evaluate_command
from osteon.cli.explain import explain_command
from osteon.cli.export import export_command
from osteon.cli.plan import plan_command
from osteon.cli.predict import predict_command
from osteon.cli.pretrain import pretrain_command
from osteon.cli.probe import probe_command
from osteon.cli.report import report_command
from osteon.cli.serve import serve_command
from osteon.cli.train import train_command

app = typer.Typer(
    name="osteon",
    help="Deep learning on musculoskeletal images: data checks, training, evaluation, prediction.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_cli.app, name="data")
app.add_typer(exam_cli.app, name="exam")
app.add_typer(pacs_cli.app, name="pacs")
app.add_typer(pipeline_cli.app, name="pipeline")
app.command("train")(train_command)
app.command("pretrain")(pretrain_command)
app.command("evaluate")(evaluate_command)
app.command("predict")(predict_command)
app.command("explain")(explain_command)
app.command("report")(report_command)
app.command("cv")(cv_command)
app.command("ensemble")(ensemble_command)
app.command("plan")(plan_command)
app.command("export")(export_command)
app.command("serve")(serve_command)
app.command("probe")(probe_command)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
