"""``osteon cv`` (K-fold cross-validation with the training flags) and ``osteon ensemble RUN RUN ... --out ENS``."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from osteon.cli._common import handle_errors, show_warnings
from osteon.cli._cv_run import run_cv
from osteon.cli.train import _build_signature

console = Console(stderr=True)

CV_OPTIONS = {
    "folds": (int, 5, "Number of cross-validation folds K (patient-grouped; ≥ 2)."),
    "holdout": (float, 0.0, "Fraction of patients held out of every fold; the fold ensemble is evaluated on it."),
    "ensemble": (bool, True, "Also build the ensemble of the K fold models (CV/ensemble, a run of its own)."),
    "n_resamples": (int, 1000, "Bootstrap resamples for every interval."),
}


def _cv_signature() -> inspect.Signature:
    base = [p for p in _build_signature().parameters.values() if p.name != "resume"]
    extra = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=default,
            annotation=Annotated[kind, typer.Option(help=text)],
        )
        for name, (kind, default, text) in CV_OPTIONS.items()
    ]
    return inspect.Signature([base[0], *extra, *base[1:]])


def cv_command(**kwargs: Any) -> None:
    """Cross-validate: K runs on patient-grouped folds, pooled out-of-fold metrics with CIs, and their ensemble."""
    config = kwargs.pop("config", None)
    run_cv(
        config,
        folds=kwargs.pop("folds"),
        holdout=kwargs.pop("holdout"),
        ensemble=kwargs.pop("ensemble"),
        n_resamples=kwargs.pop("n_resamples"),
        **kwargs,
    )


cv_command.__signature__ = _cv_signature()  # type: ignore[attr-defined]
cv_command.__annotations__ = {p.name: p.annotation for p in cv_command.__signature__.parameters.values()}


def ensemble_command(
    runs: Annotated[list[Path], typer.Argument(help="Two or more finished runs of the same task and classes.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The ensemble's run directory (never overwritten).")],
) -> None:
    """Combine runs into an ensemble run (mean of their probabilities) that predicts, explains and reports."""
    from osteon.engine.ensemble import build_ensemble

    with handle_errors(), show_warnings():
        run = build_ensemble(runs, out)
    console.print(
        f"[green]ensemble of {len(runs)} runs written to[/green] {escape(str(run.path))}; evaluate it with "
        f"`osteon evaluate {escape(str(run.path))}`.",
        soft_wrap=True,
    )
    typer.echo(str(run.path))
