"""``osteon pipeline check|run|evaluate|train PIPELINE.yaml ...``: declarative cascades of runs (docs/pipelines.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from osteon.cli._common import handle_errors, show_warnings

if TYPE_CHECKING:
    from osteon.data.manifest import Manifest

console = Console(stderr=True, soft_wrap=True)  # paths are never broken across lines
app = typer.Typer(help="Chain trained runs: detect → crop → classify, gates, several findings per study.")

PipelineArg = Annotated[Path, typer.Argument(help="Pipeline YAML file (docs/pipelines.md).")]
OutOpt = Annotated[Path, typer.Option(help="Output folder (refuses to overwrite unless --overwrite).")]


@app.command("check")
def check_command(pipeline: PipelineArg) -> None:
    """Validate a pipeline file and its runs (names, cycles, how stage outputs are used); print the stage order."""
    from osteon.pipelines.runner import Pipeline

    with handle_errors(), show_warnings():
        loaded = Pipeline.from_file(pipeline)
        for name in loaded.spec.order():
            stage = loaded.spec.stage(name)
            run = loaded.stage_run(stage)
            source = f" ← {stage.input.source}" if stage.input else ""
            console.print(f"{name}: {run.kind} from {run.path} ({run.version}){source}")
        console.print(f"{pipeline}: valid, {len(loaded.spec.stages)} stages.")


@app.command("run")
def run_command(
    pipeline: PipelineArg,
    inputs: Annotated[list[Path], typer.Argument(help="A Manifest CSV, or image files / folders.")],
    out: OutOpt = Path("pipeline_out"),
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 32,
    overwrite: Annotated[bool, typer.Option(help="Write into an existing --out.")] = False,
) -> None:
    """Run a pipeline: result.json (schema osteon.pipeline.result/1), findings.csv, studies.csv, stages/*.csv."""
    from osteon.pipelines.runner import Pipeline

    with handle_errors(), show_warnings():
        _check_out(out, overwrite)
        loaded = Pipeline.from_file(pipeline)
        result = loaded.run(_inputs(inputs), batch_size=batch_size, work_dir=out)
        paths = result.save(out)
        from osteon.pipelines.card import pipeline_card

        (out / "model_card.md").write_text(pipeline_card(result))
        studies = result.studies()
        positive = int(studies["positive"].fillna(False).astype(bool).sum())
        console.print(
            f"{len(result.manifest)} images, {studies['study'].nunique()} studies, "
            f"{positive} positive study findings → {paths['result']}"
        )


@app.command("evaluate")
def evaluate_command(
    pipeline: PipelineArg,
    data: Annotated[Path, typer.Argument(help="Labelled dataset (any layout osteon reads, or a Manifest CSV).")],
    split: Annotated[str | None, typer.Option(help="Only this split of the data (e.g. test).")] = None,
    out: OutOpt = Path("pipeline_eval"),
    n_resamples: Annotated[int, typer.Option(help="Bootstrap resamples for the confidence intervals.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 32,
    overwrite: Annotated[bool, typer.Option(help="Write into an existing --out.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics JSON to stdout.")] = False,
) -> None:
    """Score the pipeline's end result with 95% CIs (by patient) and attribute each error to a stage."""
    from osteon.data.adapters import load_dataset
    from osteon.engine.rundir import json_safe
    from osteon.errors import ConfigError
    from osteon.pipelines.evaluate import evaluate_result
    from osteon.pipelines.runner import Pipeline

    with handle_errors(), show_warnings():
        _check_out(out, overwrite)
        manifest = load_dataset(str(data))
        if split is not None:
            if "split" not in manifest.frame or not (manifest.frame["split"] == split).any():
                raise ConfigError(f"{data}: no images in split {split!r}. Fix: choose a split the data has.")
            manifest = manifest.split(split)
        loaded = Pipeline.from_file(pipeline)
        result = loaded.run(manifest, batch_size=batch_size, work_dir=out)
        result.save(out)
        scores = json_safe(evaluate_result(result, n_resamples=n_resamples, seed=seed))
        (out / "metrics.json").write_text(json.dumps(scores, indent=1))
        from osteon.pipelines.card import pipeline_card

        (out / "model_card.md").write_text(pipeline_card(result, scores))
        if as_json:
            typer.echo(json.dumps(scores, indent=2))
            return
        for name, entry in scores.items():
            auc = entry["image"]["auc"]
            console.print(
                f"{name}: AUC {auc['estimate']:.3f} ({auc['low']:.3f}–{auc['high']:.3f}), "
                f"sensitivity {entry['image']['sensitivity']['estimate']:.3f}, "
                f"specificity {entry['image']['specificity']['estimate']:.3f}, n={entry['image']['n']}"
            )
            for stage, reasons in entry["attribution"].items():
                console.print(f"  errors from {stage}: " + ", ".join(f"{r} {n}" for r, n in reasons.items()))
        console.print(f"→ {out / 'metrics.json'}")


@app.command("train")
def train_command(
    pipeline: PipelineArg,
    data: Annotated[Path, typer.Argument(help="Training dataset (Manifest CSV or any layout osteon reads).")],
    stage: Annotated[list[str] | None, typer.Option(help="Only these stages (repeatable).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Override every stage's epochs.")] = None,
) -> None:
    """Train the stages with a train: block whose run does not exist yet (sources first; crops per config)."""
    from osteon.pipelines.train import train_pipeline

    with handle_errors(), show_warnings():
        trained = train_pipeline(pipeline, data, stages=stage, epochs=epochs)
        for name, path in trained.items():
            console.print(f"{name}: trained → {path}")
        if not trained:
            console.print("Nothing to train: every stage with a train: block already has its run.")
        _print_learned_rules(pipeline)


def _print_learned_rules(path: Path) -> None:
    from osteon.pipelines.learned_combine import load_learned_combine
    from osteon.pipelines.schema import load_pipeline

    spec = load_pipeline(path)
    for stage in spec.stages:
        rule = (
            load_learned_combine(spec.run_path(stage.run), spec.name, stage.name)
            if stage.combine == "learned"
            else None
        )
        if rule is not None:
            console.print(
                f"{stage.name}: learned combine rule fitted on {rule.n_images} {rule.fitted_on} images "
                f"({rule.n_positive} positive)"
            )


def _check_out(out: Path, overwrite: bool) -> None:
    from osteon.errors import ConfigError

    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} exists and is not empty. Fix: choose another --out or pass --overwrite.")


def _inputs(inputs: list[Path]) -> Manifest:
    import warnings

    import pandas as pd

    from osteon.data.manifest import Manifest
    from osteon.errors import ConfigError
    from osteon.io.discover import find_images

    if len(inputs) == 1 and inputs[0].suffix == ".csv":
        return Manifest.load(inputs[0])
    scan = find_images(inputs)
    if not scan.files:
        raise ConfigError(f"No image files found in {', '.join(map(str, inputs))} ({scan.summary()}).")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # loose files have no patient ids
        return Manifest(pd.DataFrame({"image": [str(Path(p).resolve()) for p in scan.files]}), root="/", name="inputs")
