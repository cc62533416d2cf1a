"""``osteon explain RUN IMAGE... --out DIR [--method M] [--target-layer NAME] [--class NAME] [--sanity-check]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from osteon.cli._common import handle_errors, show_warnings

console = Console(stderr=True)


def explain_command(
    run: Annotated[Path, typer.Argument(help="Run directory written by `osteon train`.")],
    images: Annotated[list[Path], typer.Argument(help="Image files to explain.")],
    out: Annotated[Path, typer.Option(help="Folder for the overlays (PNG) and raw maps (.npy).")] = Path("cams"),
    method: Annotated[
        str,
        typer.Option(
            help="gradcam, gradcam++, hirescam, xgradcam, layercam, eigencam, eigengradcam, scorecam, ablationcam."
        ),
    ] = "gradcam",
    target_layer: Annotated[
        str | None, typer.Option(help="Dotted layer name (default: the model's registered feature layer).")
    ] = None,
    classes: Annotated[
        list[str] | None,
        typer.Option(
            "--class", help="Class or grade to explain (repeatable; 'all' for every class). Default: the prediction."
        ),
    ] = None,
    sanity_check: Annotated[
        bool, typer.Option(help="Also run the cascading model-randomisation check (Adebayo et al. 2018) per image.")
    ] = False,
) -> None:
    """Class-activation maps over the original images, with a colour bar, and the raw maps as .npy."""
    from osteon.engine import Predictor
    from osteon.errors import ConfigError
    from osteon.explain import explain_targets, parse_method, randomization_sanity_check, save_sanity_figure

    with handle_errors(), show_warnings():
        parse_method(method)  # fail before loading anything
        missing = [str(p) for p in images if not p.is_file()]
        if missing:
            raise ConfigError(f"Image file(s) not found: {', '.join(missing)}. Fix: check the paths.")
        predictor = Predictor.from_run(run)
        out.mkdir(parents=True, exist_ok=True)
        for image in images:
            explanations = explain_targets(
                predictor, image, method=method, targets=classes, layer=target_layer, out_dir=out
            )
            if not explanations:
                console.print(f"{image.name}: the model predicts nothing to explain here (no box or region).")
            for e in explanations:
                score = f"{e.score:.3f}" if e.score is not None else "—"
                predicted = f", predicted {e.prediction}" if e.prediction else ""
                console.print(f"{image.name}: target {e.target} (score {score}{predicted})")
                typer.echo(str(e.overlay))
            if sanity_check:
                target = classes[0] if classes and classes[0].lower() != "all" else None
                result = randomization_sanity_check(
                    predictor, image, method=method, target_class=target, layer=target_layer
                )
                figure = save_sanity_figure(result, out / f"{image.stem}_sanity.png")
                # to_dict() holds no NaN (a constant map's correlation is null): refuse to write invalid JSON
                (out / f"{image.stem}_sanity.json").write_text(json.dumps(result.to_dict(), indent=2, allow_nan=False))
                steps = ", ".join(
                    f"{s.block} ρ={s.spearman:.2f}" if s.spearman == s.spearman else f"{s.block} constant"
                    for s in result.steps
                )
                line = f"{image.name}: randomisation check {result.describe()} ({steps}) → {figure}"
                console.print(escape(line), highlight=False, soft_wrap=True)
