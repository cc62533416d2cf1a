"""``osteon pretrain DATA... --method simclr --model resnet18 --epochs N --out RUN``: self-supervised pretraining.

Writes ``RUN/backbone.pt`` (the backbone and its provenance) for ``--pretrained RUN`` of later training runs.
Options are checked by :class:`~osteon.engine.pretrain.PretrainConfig`; torch is imported only when a run starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from osteon.cli._common import fail, handle_errors, show_warnings, stderr_console

if TYPE_CHECKING:
    from osteon.engine.rundir import RunDir


def pretrain_command(
    data: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Dataset folders/files or plain folders of images (searched recursively); labels are ignored."
        ),
    ] = None,
    method: Annotated[
        str | None, typer.Option(help="simclr | byol | dino | mae (mae: a ViT, e.g. timm:vit_tiny_patch16_224).")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Registered model name, or timm:<name>. (default: resnet18)")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Epochs to train (with --resume: the new total). (default: 100)")
    ] = None,
    image_size: Annotated[int | None, typer.Option(help="Square crop size in pixels. (default: 224)")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per batch (at least 2). (default: 64)")] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory; never overwritten. (default: runs/pretrain)")] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Continue this pretraining run from its last checkpoint (no DATA).")
    ] = None,
    exclude_splits: Annotated[
        str | None,
        typer.Option(
            help="Comma list of dataset splits left out, so a later test set stays unseen; 'none' keeps "
            "every image. (default: test)"
        ),
    ] = None,
    channels: Annotated[
        str | None, typer.Option(help="grey | rgb: input colour of the backbone. (default: grey)")
    ] = None,
    hflip: Annotated[
        bool | None,
        typer.Option(
            "--hflip/--no-hflip", help="Horizontal flips in the views (only where laterality does not matter)."
        ),
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate (AdamW, cosine schedule). (default: 0.001)")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed. (default: 0)")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads.")] = None,
    num_workers: Annotated[int | None, typer.Option(help="DataLoader workers. (default: 0)")] = None,
    precision: Annotated[str | None, typer.Option(help="auto | 32 | bf16-mixed | 16-mixed. (default: auto)")] = None,
    accelerator: Annotated[str | None, typer.Option(help="auto | cpu | gpu. (default: auto)")] = None,
    devices: Annotated[str | None, typer.Option(help="'auto', a count, or a comma list of device ids.")] = None,
) -> None:
    """Pretrain a backbone on unlabelled images (SimCLR, BYOL, DINO, MAE); writes RUN/backbone.pt."""
    options = {
        "method": method,
        "model": model,
        "epochs": epochs,
        "image_size": image_size,
        "batch_size": batch_size,
        "out": str(out) if out is not None else None,
        "exclude_splits": exclude_splits,
        "channels": channels,
        "hflip": hflip,
        "lr": lr,
        "seed": seed,
        "threads": threads,
        "num_workers": num_workers,
        "precision": precision,
        "accelerator": accelerator,
        "devices": devices,
    }
    given = {k: v for k, v in options.items() if v is not None}
    if resume is not None and data:
        fail(f"--resume {resume} continues with the run's own images; drop the DATA arguments.")
    if resume is None and not data:
        fail("no DATA given. Fix: `osteon pretrain FOLDER... --method simclr --out RUN` (or --resume RUN).")
    from osteon.engine.config import is_ddp_child

    with handle_errors(), show_warnings():
        from osteon.engine import pretrain

        if resume is not None:
            run = pretrain(resume=resume, **given)
        else:
            run = pretrain(data=[str(p) for p in data or []], **given)
    if not is_ddp_child():
        _loss_figure(run)
        _summary(run)
        typer.echo(str(run.path))


def _loss_figure(run: RunDir) -> None:
    """``figures/loss_curve.png``: the training loss per epoch (from ``logs/metrics.csv``)."""
    if not run.metrics_log.is_file():
        return
    import pandas as pd

    from osteon.report.figures import learning_curve_figure, save_figure

    fig = learning_curve_figure(pd.read_csv(run.metrics_log))
    if fig is not None:
        save_figure(fig, run.figures / "loss_curve.png", vector=False)


def _summary(run: RunDir) -> None:
    record = run.read_json(run.training)
    console = stderr_console()
    loss = record.get("final_loss")
    loss_text = f", final loss {float(loss):.4g}" if isinstance(loss, int | float) else ""
    epochs = record.get("epochs_run", "?")
    console.print(
        f"Pretrained {epochs} epoch{'' if epochs == 1 else 's'} ({escape(str(record.get('method', '')))}, "
        f"{escape(str(record.get('model', '')))}) in {record.get('duration_s', '?')} s{loss_text}.",
        soft_wrap=True,
        highlight=False,
    )
    console.print(f"  backbone  {escape(str(run.path / 'backbone.pt'))}", soft_wrap=True, highlight=False)
    console.print(
        f"Fine-tune with it: osteon train ... --pretrained {escape(str(run.path))}", soft_wrap=True, highlight=False
    )
