"""``osteon exam fuse RUN RUN... --out DIR [--names a,b,c]``: MRNet-style fusion of series runs, evaluated per exam."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from osteon.cli._common import handle_errors, show_warnings

app = typer.Typer(help="Exam-level models over several series runs (MRNet: one run per plane, fused).")


@app.command("fuse")
def fuse_command(
    runs: Annotated[list[Path], typer.Argument(help="Binary runs, one per series, whose tables carry study_id.")],
    out: Annotated[Path, typer.Option(help="Output folder: fusion.json, predictions_*.csv, metrics.json.")] = Path(
        "exam_fusion"
    ),
    names: Annotated[str | None, typer.Option(help="Series names, comma-separated (default: the run folders).")] = None,
    n_resamples: Annotated[int, typer.Option(help="Bootstrap resamples for the CIs.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """Fit logistic regression across the runs' per-series scores on validation exams; evaluate it on test exams."""
    from osteon.pipelines.exam import fuse_runs

    with handle_errors(), show_warnings():
        given = [n.strip() for n in names.split(",")] if names else None
        result = fuse_runs(runs, out=out, names=given, n_resamples=n_resamples, seed=seed)
    typer.echo(json.dumps({"fused_auc": result["fused"]["auc"], "series_auc": result["series_auc"]}, default=float))
    typer.echo(str(out))
