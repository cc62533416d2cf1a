"""``osteon report RUN [--compare RUN2 ...] [--readers readers.csv] [--external KEY ...]``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from osteon.cli._common import handle_errors, show_warnings


def report_command(
    run: Annotated[
        Path,
        typer.Argument(help="Run directory evaluated with `osteon evaluate`, or an `osteon pipeline evaluate` folder."),
    ],
    compare: Annotated[
        list[Path] | None, typer.Option(help="Another run evaluated on the same cases (repeatable): paired tests.")
    ] = None,
    readers: Annotated[
        Path | None, typer.Option(help="CSV of human readers' calls: columns reader, case (image path or id), call.")
    ] = None,
    external: Annotated[
        list[str] | None,
        typer.Option(
            help="metrics.json key of an external evaluation (`osteon evaluate RUN --data OTHER`); repeatable."
        ),
    ] = None,
    subgroups: Annotated[
        list[str] | None, typer.Option(help="Extra Manifest column for the subgroup table (repeatable).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="HTML file to write (default RUN/report.html).")] = None,
    gallery_size: Annotated[int, typer.Option(help="Cases per gallery group (0: none).")] = 3,
    cam_method: Annotated[str, typer.Option(help="CAM method of the gallery.")] = "gradcam",
    sanity_check: Annotated[bool, typer.Option(help="Check that the maps depend on the model (randomisation).")] = True,
    n_resamples: Annotated[int, typer.Option(help="Bootstrap resamples for paired tests and subgroups.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """Write a self-contained HTML study report (and RUN/model_card.md) from a run directory; print its path.

    A folder written by `osteon pipeline evaluate` gets the pipeline report: end-to-end metrics with CIs, the
    stage attribution of the errors and the model card of every stage (FOLDER/report.html).
    """
    from osteon.report import write_report
    from osteon.report.pipeline_report import is_pipeline_folder, write_pipeline_report

    with handle_errors(), show_warnings():
        if is_pipeline_folder(run):
            typer.echo(str(write_pipeline_report(run, out=out)))
            return
        path = write_report(
            run,
            out=out,
            compare=compare or (),
            readers=readers,
            external=external or (),
            subgroups=subgroups or (),
            gallery_size=gallery_size,
            cam_method=cam_method,
            sanity_check=sanity_check,
            n_resamples=n_resamples,
            seed=seed,
        )
        typer.echo(str(path))
