"""``osteon plan DATA --out plan.yaml``: a dataset's fingerprint and a recommended config for every strategy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from osteon.cli._common import handle_errors, show_warnings
from osteon.cli.data import with_dataset_options

console = Console(stderr=True)


@with_dataset_options
def plan_command(
    data: Annotated[Path, typer.Argument(help="Dataset folder, annotation file or Manifest CSV.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="plan.yaml to write (never overwritten).")] = Path(
        "plan.yaml"
    ),
    format: Annotated[str | None, typer.Option(help="Dataset format; detected when not given.")] = None,
    sample: Annotated[int, typer.Option(help="Images read fully for sizes, bit depth, spacing, colour.")] = 48,
    modality: Annotated[
        str | None, typer.Option(help="Modality when the files do not say (PNG/JPEG): CR, DX, US, MR, CT.")
    ] = None,
    options: dict[str, str] | None = None,
) -> None:
    """Fingerprint a dataset and write the recommended task and config (with reasons) for every strategy.

    Use it with `osteon train --plan plan.yaml` (flags and a YAML config override the plan).
    """
    from osteon.engine.plan import make_plan, write_plan

    with handle_errors(), show_warnings():
        plan = make_plan(data, format=format, sample=sample, modality=modality, **(options or {}))
        write_plan(plan, out)
    fp = plan["fingerprint"]
    sample_info = fp.get("image_sample", {})
    console.print(
        f"{escape(str(fp['name']))}: {fp['images']} images, {fp.get('patients') or 'no'} patients, "
        f"short side ~{sample_info.get('short_side_median', '?')} px, bits {sample_info.get('bits_stored', {})}; "
        f"machine: {plan['machine']['accelerator']}",
        soft_wrap=True,
    )
    table = Table(title="Planned strategies")
    for column in ("task", "model", "image size", "epochs", "batch", "warnings"):
        table.add_column(column)
    for task, entry in plan["strategies"].items():
        cfg = entry["config"]
        mark = " (recommended)" if task == plan["recommended"] else ""
        table.add_row(
            task + mark,
            escape(str(cfg.get("model"))) + (f" / {escape(str(cfg['encoder']))}" if cfg.get("encoder") else ""),
            str(cfg.get("image_size")),
            str(cfg.get("epochs")),
            str(cfg.get("batch_size")),
            str(len(entry["warnings"])),
        )
    console.print(table)
    console.print(
        f"[green]plan written to[/green] {escape(str(out))}; train with `osteon train --plan {escape(str(out))}`"
    )
    typer.echo(str(out))
