"""Running a cross-validation from the CLI (``osteon cv`` and ``osteon train --folds``) and printing its summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from osteon.cli._common import handle_errors, show_warnings

console = Console(stderr=True)


def run_cv(
    config: Path | None, *, folds: int, holdout: float, ensemble: bool, n_resamples: int, **options: Any
) -> None:
    """Cross-validate with the given training options and print the pooled metrics and their spread."""
    from osteon.engine.config import TrainConfig
    from osteon.engine.cv import cross_validate

    with handle_errors(), show_warnings():
        cfg = TrainConfig.from_sources(config, **{k: v for k, v in options.items() if v is not None})
        result = cross_validate(cfg, folds=folds, test_fraction=holdout, ensemble=ensemble, n_resamples=n_resamples)
    print_cv_summary(result.summary)
    if result.ensemble is not None:
        console.print(f"  ensemble run              {escape(str(result.ensemble.path))}", soft_wrap=True)
    console.print(f"[green]cross-validation written to[/green] {escape(str(result.path))}", soft_wrap=True)
    typer.echo(str(result.path))


def print_cv_summary(summary: dict[str, Any]) -> None:
    """The spread across folds and the pooled estimate of every metric, as one table on stderr."""
    table = Table(title=f"{summary.get('folds')}-fold cross-validation ({summary.get('n_images_out_of_fold')} images)")
    for column in ("metric", "pooled (95% CI)", "mean ± SD over folds", "min – max"):
        table.add_column(column)
    pooled = summary.get("pooled") or {}
    for name, s in (summary.get("spread") or {}).items():
        value: Any = pooled
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        ci = (
            f"{value['estimate']:.3f} ({value['low']:.3f}–{value['high']:.3f})"
            if isinstance(value, dict) and value.get("low") is not None and value.get("estimate") is not None
            else "—"
        )
        sd = s.get("sd")
        table.add_row(
            escape(name),
            ci,
            f"{s['mean']:.3f} ± {sd:.3f}" if sd == sd and sd is not None else f"{s['mean']:.3f}",
            f"{s['min']:.3f} – {s['max']:.3f}",
        )
    console.print(table)
    test = (summary.get("ensemble") or {}).get("test")
    if test:
        shown = ", ".join(f"{k} {v:.3f}" for k, v in list(test["metrics"].items())[:4] if v is not None)
        console.print(f"Ensemble on the held-out test set ({test['n_images']} images): {shown}")
