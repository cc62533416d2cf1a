"""Prediction over any number of images in bounded memory, with decoding overlapping inference.

The Manifest's rows are taken ``chunk_size`` at a time. While the model runs on one chunk, a background thread
decodes and letterboxes the next one (with its own small thread pool: Pillow and the DICOM codecs release the
GIL), so at most two chunks of decoded pixels exist at once, whatever the number of inputs. Each chunk's table
is handed over as soon as it is ready (:func:`iter_prediction_chunks`), so callers can write results
incrementally.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from osteon.data.datasets import DecodedImages, decode_images
from osteon.data.manifest import Manifest
from osteon.engine.outputs import MaskFileWriter

if TYPE_CHECKING:
    from osteon.engine.predictor import Predictor

#: Images decoded per chunk: 64 × 224² float16 ≈ 6.4 MB, 64 × 512² ≈ 34 MB (two chunks live at once).
#: Small enough that decoding overlaps inference from the second chunk on, even for a few hundred images.
DEFAULT_CHUNK_SIZE = 64


class UniqueStemWriter:
    """An :class:`~osteon.tasks.base.OutputWriter` that keeps file stems unique across chunks.

    Tasks make stems unique within one call of ``predict_rows``; chunks are separate calls, so two images
    named ``a.png`` in different chunks would otherwise overwrite each other's mask.
    """

    def __init__(self, writer: Any) -> None:
        self.writer = writer
        self.seen: dict[tuple[str, str], int] = {}

    def save_mask(self, kind: str, stem: str, mask: np.ndarray) -> str:
        count = self.seen.get((kind, stem), 0)
        self.seen[(kind, stem)] = count + 1
        return self.writer.save_mask(kind, stem if count == 0 else f"{stem}_{count}", mask)


def iter_prediction_chunks(
    predictor: Predictor,
    manifest: Manifest,
    *,
    batch_size: int = 32,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    decode_workers: int = 2,
    out_dir: Path | None = None,
    progress: bool = True,
) -> Iterator[pd.DataFrame]:
    """Yield one predictions table per chunk of Manifest rows, in row order.

    Unreadable images get an ``error`` and no scores (never dropped). ``image`` holds absolute paths.

    Args:
        predictor: The model (any backend).
        manifest: The images (and covariates) to predict.
        batch_size: Images per model call.
        chunk_size: Images decoded at a time (memory bound: two chunks).
        decode_workers: Threads decoding one chunk.
        out_dir: Folder for file outputs (masks), as in :meth:`Predictor.predict_manifest`.
        progress: Show a progress bar on the console.
    """
    n = len(manifest)
    chunk_size = max(1, int(chunk_size))
    chunks = [np.arange(s, min(n, s + chunk_size)) for s in range(0, n, chunk_size)]
    writer = UniqueStemWriter(MaskFileWriter(out_dir)) if out_dir is not None else None
    encoder = predictor.covariates
    covariates = encoder.transform(manifest.frame) if encoder.columns else None

    def decode(rows: np.ndarray) -> DecodedImages:
        return decode_images(manifest.paths_of(rows), predictor.preprocessing, workers=decode_workers, progress=False)

    bar = _progress_bar(n) if progress and n > 16 else None
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="osteon-decode") as prefetch:
            pending: Future[DecodedImages] | None = prefetch.submit(decode, chunks[0]) if chunks else None
            for k, rows in enumerate(chunks):
                if pending is None:  # pragma: no cover - one future per chunk
                    break
                decoded = pending.result()
                pending = prefetch.submit(decode, chunks[k + 1]) if k + 1 < len(chunks) else None
                yield predict_decoded(
                    predictor, manifest, rows, decoded, covariates, batch_size=batch_size, writer=writer
                )
                if bar is not None:
                    bar[0].update(bar[1], advance=len(rows))
    finally:
        if bar is not None:
            bar[0].stop()


def predict_decoded(
    predictor: Predictor,
    manifest: Manifest,
    rows: np.ndarray,
    decoded: DecodedImages,
    covariates: np.ndarray | None,
    *,
    batch_size: int,
    writer: Any,
) -> pd.DataFrame:
    """The predictions table of Manifest ``rows`` whose images are ``decoded`` (same order)."""
    ok = decoded.readable()
    task = predictor.task
    frame: pd.DataFrame
    if len(ok):
        dataset = task.make_dataset(
            manifest,
            rows[ok],
            DecodedImages(decoded.stack[ok], [decoded.geometry[i] for i in ok], {}),
            covariates=covariates[rows[ok]] if covariates is not None else None,
            augment=None,
            prep=predictor.preprocessing,
        )
        frame = task.predict_rows(predictor.model, manifest, dataset, batch_size=batch_size, outputs=writer)
    else:
        frame = pd.DataFrame()
    frame["error"] = ""
    if decoded.errors:
        positions = np.array(sorted(decoded.errors), dtype=np.int64)
        source = manifest.frame.iloc[rows[positions]]
        bad = source[[c for c in ("image", "patient_id", "split") if c in source]].reset_index(drop=True)
        bad = bad.assign(error=[decoded.errors[int(i)] for i in positions])
        order = np.concatenate([ok, positions])
        frame = pd.concat([frame, bad], ignore_index=True).iloc[np.argsort(order, kind="stable")]
    frame["image"] = [str(manifest.resolve(p)) for p in frame["image"]]
    return frame.reset_index(drop=True)


def _progress_bar(total: int) -> tuple[Any, Any]:
    from rich.progress import Progress

    bar = Progress(transient=True)
    task_id = bar.add_task(f"predict {total} images", total=total)
    bar.start()
    return bar, task_id
