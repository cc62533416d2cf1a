"""``osteon probe BACKBONE_OR_RUN --data DATA [--target COL] [--split-file F] [--out DIR]``: k-NN / linear probe."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from osteon.cli._common import handle_errors, show_warnings, stderr_console


def probe_command(
    backbone: Annotated[
        str,
        typer.Argument(
            help="Run of `osteon pretrain` (or its backbone.pt), a run of `osteon train`, or 'random' (with --model)."
        ),
    ],
    data: Annotated[Path, typer.Option(help="Labelled dataset folder, annotation file or Manifest CSV.")],
    target: Annotated[str, typer.Option(help="Manifest column holding each image's class.")] = "label",
    split_file: Annotated[
        Path | None, typer.Option(help="CSV with image,split columns to use instead of the data's split.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for probe.json and probe.png/.svg/.pdf.")] = Path("probe"),
    model: Annotated[str | None, typer.Option(help="Architecture of a 'random' backbone (e.g. resnet18).")] = None,
    image_size: Annotated[
        int | None, typer.Option(help="Square input size (default: the backbone's pretraining size, else 224).")
    ] = None,
    eval_split: Annotated[str, typer.Option(help="test (val when there is none) or val.")] = "test",
    baseline: Annotated[
        bool, typer.Option(help="Also probe a random backbone of the same architecture (the comparison).")
    ] = True,
    neighbours: Annotated[int, typer.Option(help="k of the k-NN classifier.")] = 20,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 32,
    n_resamples: Annotated[int, typer.Option(help="Bootstrap resamples of the 95% CIs.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the random baseline, a generated split and the bootstrap.")] = 0,
) -> None:
    """Is a backbone's frozen representation useful for a labelled question? k-NN and linear probe, before fine-tuning.

    Writes probe.json and a bar chart comparing the backbone with a randomly initialised one of the same
    architecture (accuracy, and AUC for two classes, with bootstrap CIs by patient).
    """
    from osteon.engine.probe import probe
    from osteon.report.probe import write_probe

    console = stderr_console()
    with handle_errors(), show_warnings():
        result = probe(
            backbone,
            data=data,
            target=target,
            split_file=split_file,
            model=model,
            image_size=image_size,
            eval_split=eval_split,
            baseline=baseline,
            neighbours=neighbours,
            batch_size=batch_size,
            n_resamples=n_resamples,
            seed=seed,
        )
        written = write_probe(result, out)
    for label, probes in result["results"].items():
        parts = []
        for name, metrics in probes.items():
            for metric, ci in metrics.items():
                parts.append(f"{name} {metric} {ci['estimate']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]")
        console.print(f"{escape(label)}: " + "; ".join(parts), soft_wrap=True, highlight=False)
    labels = list(result["results"])
    for name, metrics in result.get("comparison", {}).items():
        for metric, d in metrics.items():
            console.print(
                f"{name} {metric}: {escape(labels[0])} − {escape(labels[1])} = {d['difference']:+.3f} "
                f"[{d['low']:+.3f}, {d['high']:+.3f}], p = {d['p_value']:.3g} (paired bootstrap)",
                soft_wrap=True,
                highlight=False,
            )
    typer.echo(str(written[0]))
