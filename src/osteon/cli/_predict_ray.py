"""``osteon predict --engine ray``: the CLI side of :mod:`osteon.engine.distributed`."""

from __future__ import annotations

import warnings
from pathlib import Path

from rich.console import Console

console = Console(stderr=True)


def predict_with_ray(
    run: Path,
    inputs: list[Path],
    out: Path,
    *,
    engine: str,
    batch_size: int,
    workers: int,
    shard_size: int,
    gpus_per_worker: float,
    address: str | None,
    backend: str = "torch",
) -> None:
    """Score a Manifest CSV (or image files and folders) in shards on Ray; resume an interrupted job."""
    import pandas as pd

    from osteon.data.manifest import Manifest
    from osteon.engine.distributed import parts_folder, predict_sharded
    from osteon.errors import ConfigError

    if engine != "ray":
        raise ConfigError(f"--engine {engine!r} is not known. Fix: use --engine local or --engine ray.")
    if len(inputs) == 1 and inputs[0].suffix == ".csv":
        manifest = Manifest.load(inputs[0])
    else:
        from rich.markup import escape

        from osteon.io.discover import find_images

        scan = find_images(inputs)
        if scan.skipped:
            console.print(escape(scan.summary()), soft_wrap=True, highlight=False)
        if not scan.files:
            raise ConfigError(f"No image files found in {', '.join(map(str, inputs))} ({scan.summary()}).")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # no patient ids is expected for loose files
            manifest = Manifest(pd.DataFrame({"image": [str(Path(p).resolve()) for p in scan.files]}), root="/")

    def progress(done: int, total: int) -> None:
        console.print(f"shard {done}/{total} done", highlight=False)

    frame = predict_sharded(
        run,
        manifest,
        out,
        workers=workers,
        shard_size=shard_size,
        batch_size=batch_size,
        gpus_per_worker=gpus_per_worker,
        address=address,
        backend=backend,
        on_shard=progress,
    )
    failed = int((frame["error"] != "").sum()) if "error" in frame else 0
    console.print(
        f"{len(frame) - failed} predicted, {failed} unreadable → {out} (parts in {parts_folder(out)}; "
        "rerun the same command to resume an interrupted job)"
    )
