"""``osteon predict RUN INPUTS... --out predictions.csv``.

Folders are searched recursively for images by content (:func:`osteon.io.discover.find_images`): a DICOM
named by its UID without ``.dcm`` is predicted, symbolic-link loops are walked once, and every file left
out is printed with the reason and counted in the closing line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from osteon.cli._common import handle_errors, show_warnings

if TYPE_CHECKING:
    from osteon.io.discover import ImageScan

console = Console(stderr=True)

#: Skipped files listed one per line before the summary; more are only counted (by reason) in the summary.
SHOW_SKIPPED = 20


def predict_command(
    run: Annotated[Path, typer.Argument(help="Run directory written by `osteon train`.")],
    inputs: Annotated[
        list[Path], typer.Argument(help="Image files, folders (searched recursively) or a Manifest CSV.")
    ],
    out: Annotated[Path, typer.Option(help="CSV to write (refuses to overwrite).")] = Path("predictions.csv"),
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 32,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
    engine: Annotated[
        str, typer.Option(help="local (this process) or ray (Ray Data shards; extra `distributed`; resumable).")
    ] = "local",
    workers: Annotated[int, typer.Option(help="--engine ray: predictor workers (Ray actors).")] = 2,
    shard_size: Annotated[int, typer.Option(help="--engine ray: images per shard (one part file each).")] = 256,
    gpus_per_worker: Annotated[float, typer.Option(help="--engine ray: GPUs per worker (0 = CPU).")] = 0.0,
    ray_address: Annotated[
        str | None, typer.Option(help="--engine ray: cluster to join (e.g. auto); default a local Ray instance.")
    ] = None,
    backend: Annotated[
        str, typer.Option(help="torch, onnx or onnx-int8 (ONNX Runtime; run `osteon export RUN --format onnx` first).")
    ] = "torch",
) -> None:
    """Predict images. Unreadable inputs are listed in the output with their error; the batch goes on.

    Files in folders that are not images (by content) are skipped, each printed with the reason.
    """
    from osteon.data.manifest import Manifest
    from osteon.engine import Predictor
    from osteon.errors import ConfigError
    from osteon.io.video import is_video

    with handle_errors(), show_warnings():
        if out.exists() and not overwrite:
            raise ConfigError(f"{out} exists. Fix: choose another --out or pass --overwrite.")
        if engine != "local":
            from osteon.cli._predict_ray import predict_with_ray

            predict_with_ray(
                run,
                inputs,
                out,
                engine=engine,
                batch_size=batch_size,
                workers=workers,
                shard_size=shard_size,
                gpus_per_worker=gpus_per_worker,
                address=ray_address,
                backend=backend,
            )
            return
        predictor = Predictor.from_run(run, backend=backend)
        outputs = out.parent / f"{out.stem}_outputs"  # masks and other file outputs, when the task has them
        skipped = 0
        if len(inputs) == 1 and is_video(inputs[0]):  # one row per frame, and the achieved frame rate
            frame, fps = predictor.predict_video(inputs[0], batch_size=batch_size)
            console.print(f"video: {len(frame)} frames at {fps:.1f} frames/s (read + preprocess + model)")
        elif len(inputs) == 1 and inputs[0].suffix == ".csv":
            frame = predictor.predict_manifest(Manifest.load(inputs[0]), batch_size=batch_size, out_dir=outputs)
        else:
            scan = collect_inputs(inputs)
            report_skipped(scan)
            if not scan.files:
                raise ConfigError(
                    f"No image files found in {', '.join(map(str, inputs))} ({scan.summary()}). "
                    "Fix: pass the folder or files that hold the images (DICOM, PNG, JPEG, TIFF, NIfTI)."
                )
            frame = predictor.predict_paths(scan.files, batch_size=batch_size, out_dir=outputs)
            skipped = len(scan.skipped)
        if "frame" not in frame.columns:  # DICOM inputs are traced by their Study/Series/SOP Instance UIDs
            from osteon.io.uids import add_uid_columns

            frame = add_uid_columns(frame)
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out, index=False)
        failed = int((frame["error"] != "").sum())
        console.print(f"{len(frame) - failed} predicted, {failed} unreadable, {skipped} skipped → {out}")


def collect_inputs(inputs: list[Path]) -> ImageScan:
    """Files as given, plus every image file (by content) under each folder; skipped entries with reasons."""
    from osteon.io.discover import find_images

    return find_images(inputs)


def report_skipped(scan: ImageScan) -> None:
    """Print each skipped file with its reason (the first :data:`SHOW_SKIPPED`), then one summary line."""
    if not scan.skipped:
        return
    for item in scan.skipped[:SHOW_SKIPPED]:
        console.print(f"[yellow]skipped[/yellow] {escape(str(item))}", soft_wrap=True, highlight=False)
    if len(scan.skipped) > SHOW_SKIPPED:
        console.print(f"... and {len(scan.skipped) - SHOW_SKIPPED} more skipped.")
    console.print(escape(scan.summary()), soft_wrap=True, highlight=False)
