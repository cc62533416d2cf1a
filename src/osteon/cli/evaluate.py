"""``osteon evaluate RUN --split test [--data OTHER] [--json]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from osteon.cli._common import handle_errors, show_warnings
from osteon.cli.data import FormatOpt, with_dataset_options

console = Console(stderr=True)


@with_dataset_options
def evaluate_command(
    run: Annotated[Path, typer.Argument(help="Run directory written by `osteon train`.")],
    split: Annotated[
        str | None,
        typer.Option(
            help="Split to evaluate: train, val or test (default: the run's test split; with --data, every "
            "labelled image of that dataset)."
        ),
    ] = None,
    data: Annotated[Path | None, typer.Option(help="Another dataset (external validation).")] = None,
    n_resamples: Annotated[int, typer.Option(help="Bootstrap resamples for the confidence intervals.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics.json's entry to stdout.")] = False,
    figures: Annotated[bool, typer.Option(help="Write PNG figures into RUN/figures.")] = True,
    format: FormatOpt = None,
    options: dict[str, str] | None = None,
) -> None:
    """Evaluate a run: metrics with 95% CIs (resampled by patient) into RUN/metrics.json, plus figures."""
    from osteon.engine import evaluate
    from osteon.engine.rundir import json_safe
    from osteon.errors import ConfigError
    from osteon.report.figures import write_figures

    with handle_errors(), show_warnings():
        if (format or options) and data is None:
            raise ConfigError("--format and the dataset options apply to --data OTHER only; add --data.")
        result = evaluate(
            run,
            split=split,
            data=data,
            data_format=format,
            data_options=options,
            n_resamples=n_resamples,
            seed=seed,
            progress=not as_json,
        )
        written = write_figures(run, result) if figures else []
        if as_json:
            typer.echo(json.dumps(json_safe(result), indent=2, default=float))
            return
        _print_headline(result)
        for path in written:
            console.print(f"figure: {path}")


def _print_headline(result: dict) -> None:
    from rich.table import Table

    patients = f", {result['n_patients']} patients" if result.get("n_patients") else ""
    title = f"{result['task']} — {result['data']} — split: {result['split']} — {result['n_images']} images{patients}"
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("estimate (95% CI)")
    for key, value in result.items():
        if isinstance(value, dict) and {"estimate", "low", "high"} <= set(value):
            table.add_row(key, f"{value['estimate']:.3f} ({value['low']:.3f}–{value['high']:.3f})")
    console.print(table)
