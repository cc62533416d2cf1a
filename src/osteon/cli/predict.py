"""``osteon predict RUN INPUTS... --out predictions.csv``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from osteon.cli._common import handle_errors

console = Console(stderr=True)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm", ".dicom", ".nii", ".gz", ""}


def predict_command(
    run: Annotated[Path, typer.Argument(help="Run directory written by `osteon train`.")],
    inputs: Annotated[
        list[Path], typer.Argument(help="Image files, folders (searched recursively) or a Manifest CSV.")
    ],
    out: Annotated[Path, typer.Option(help="CSV to write (refuses to overwrite).")] = Path("predictions.csv"),
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 32,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Predict images. Unreadable inputs are listed in the output with their error; the batch goes on."""
    from osteon.data.manifest import Manifest
    from osteon.engine import Predictor
    from osteon.errors import ConfigError
    from osteon.io.video import is_video

    with handle_errors():
        if out.exists() and not overwrite:
            raise ConfigError(f"{out} exists. Fix: choose another --out or pass --overwrite.")
        predictor = Predictor.from_run(run)
        outputs = out.parent / f"{out.stem}_outputs"  # masks and other file outputs, when the task has them
        if len(inputs) == 1 and is_video(inputs[0]):  # one row per frame, and the achieved frame rate
            frame, fps = predictor.predict_video(inputs[0], batch_size=batch_size)
            console.print(f"video: {len(frame)} frames at {fps:.1f} frames/s (read + preprocess + model)")
        elif len(inputs) == 1 and inputs[0].suffix == ".csv":
            frame = predictor.predict_manifest(Manifest.load(inputs[0]), batch_size=batch_size, out_dir=outputs)
        else:
            files = collect_inputs(inputs)
            if not files:
                raise ConfigError(f"No files found in {', '.join(map(str, inputs))}.")
            frame = predictor.predict_paths(files, batch_size=batch_size, out_dir=outputs)
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out, index=False)
        failed = int((frame["error"] != "").sum())
        console.print(f"{len(frame) - failed} predicted, {failed} unreadable → {out}")


def collect_inputs(inputs: list[Path]) -> list[Path]:
    """Files as given, plus every file under each folder (hidden files and CSVs skipped), sorted."""
    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            files.extend(
                p
                for p in sorted(item.rglob("*"))
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
            )
        else:
            files.append(item)  # a missing file is reported in the output, not here
    return files
