"""``Predictor``: a trained model that needs nothing but its run directory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from osteon.data.covariates import CovariateEncoder
from osteon.data.datasets import DecodedImages
from osteon.data.manifest import Manifest
from osteon.data.transforms import Preprocessing
from osteon.engine.checkpoint import load_model_file
from osteon.engine.rundir import RunDir
from osteon.tasks import TaskState, build_task
from osteon.tasks.base import Prediction, Task


@dataclass
class Predictor:
    """Model + task + preprocessing + covariate encoding, restored from ``model.pt``.

    Example:
        >>> predictor = Predictor.from_run("runs/knee-smoke")  # doctest: +SKIP
        >>> predictor.predict_image("knee.png").grade  # doctest: +SKIP
        '2'
    """

    model: nn.Module
    task: Task
    preprocessing: Preprocessing
    covariates: CovariateEncoder
    meta: dict[str, Any]
    run: RunDir | None = None
    backend: str = "torch"

    @classmethod
    def from_run(cls, path: str | Path, *, backend: str = "torch", threads: int | None = None) -> Predictor:
        """Load the best model of a finished run (``RUN/model.pt``).

        Args:
            path: The run directory.
            backend: ``"torch"`` (``model.pt``), ``"onnx"`` (``export/model.onnx``) or ``"onnx-int8"``
                (``export/model.int8.onnx``); the ONNX files come from ``osteon export RUN --format onnx``.
            threads: ONNX Runtime intra-op threads (default: torch's thread count).
        """
        run = RunDir.open(path)
        predictor = cls.from_file(run.model)
        predictor.run = run
        if backend != "torch":
            from osteon.engine.onnx_session import onnx_model_of_run
            from osteon.models.decoded import Decoded, DecodedModel

            session = onnx_model_of_run(run, backend, threads=threads)
            torch_model = predictor.model
            # a detector's network runs in ONNX Runtime, its decoding (top cells, NMS) in PyTorch
            predictor.model = Decoded(session, torch_model) if isinstance(torch_model, DecodedModel) else session
        predictor.backend = backend
        return predictor

    @classmethod
    def from_file(cls, path: str | Path) -> Predictor:
        payload = load_model_file(Path(path))
        meta = payload["meta"]
        task = build_task(TaskState(**meta["task"]))
        encoder = CovariateEncoder.from_dict(meta["covariates"])
        cfg = meta["config"]
        if meta.get("ensemble"):  # several members' weights, combined by the task (engine/ensemble.py)
            from osteon.engine.ensemble_model import build_ensemble_model

            model = build_ensemble_model(task, meta, payload["state_dict"])
        else:
            model = task.build_model(
                model=cfg["model"], pretrained=None, covariate_dim=encoder.dim, dropout=cfg.get("dropout", 0.0)
            )
            model.load_state_dict(payload["state_dict"])
        if cfg.get("channels_last"):  # as trained: the weights' layout makes the convolutions run channels-last
            model = model.to(memory_format=torch.channels_last)
        model.eval()
        return cls(model, task, Preprocessing(**meta["preprocessing"]), encoder, meta)

    @property
    def operating_point(self) -> dict[str, Any] | None:
        if self.run is None or not self.run.operating_point.is_file():
            return None
        return self.run.read_json(self.run.operating_point)

    def predict_manifest(
        self,
        manifest: Manifest,
        *,
        batch_size: int = 32,
        progress: bool = True,
        out_dir: Path | None = None,
        chunk_size: int | None = None,
    ) -> pd.DataFrame:
        """Predict every row; unreadable images get an ``error`` and no scores (never dropped).

        ``out_dir`` receives outputs that are files (predicted masks, through :class:`MaskFileWriter`); the table
        holds their paths. Images are decoded ``chunk_size`` at a time in a background thread while the model runs
        on the previous chunk (:mod:`osteon.engine.streaming`), so memory does not grow with the number of images.
        """
        from osteon.engine.streaming import DEFAULT_CHUNK_SIZE, iter_prediction_chunks

        parts = list(
            iter_prediction_chunks(
                self,
                manifest,
                batch_size=batch_size,
                chunk_size=chunk_size or DEFAULT_CHUNK_SIZE,
                out_dir=out_dir,
                progress=progress,
            )
        )
        if not parts:
            return pd.DataFrame({"image": pd.Series([], dtype=object), "error": pd.Series([], dtype=object)})
        return pd.concat(parts, ignore_index=True)

    def predict_paths(
        self,
        paths: Sequence[str | Path],
        *,
        batch_size: int = 32,
        progress: bool = True,
        out_dir: Path | None = None,
    ) -> pd.DataFrame:
        """Predict image files (no covariates: they are encoded as missing)."""
        frame = pd.DataFrame({"image": [str(Path(p).resolve()) for p in paths]})
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # no patient ids is expected here
            manifest = Manifest(frame, root="/", name="inputs")
        return self.predict_manifest(manifest, batch_size=batch_size, progress=progress, out_dir=out_dir)

    def predict_frames(
        self, frames: Sequence[np.ndarray], names: Sequence[str], *, batch_size: int = 32
    ) -> pd.DataFrame:
        """Predict in-memory 2D images (video frames): ``(H, W)`` float arrays in [0, 1], one row each.

        ``names`` fill the ``image`` column (e.g. ``clip.mp4#frame=12``). Frames are letterboxed like files.
        """
        from osteon.data.transforms import letterbox

        size, channels = self.preprocessing.image_size, self.preprocessing.channels
        stack = np.zeros((len(frames), *((channels,) if channels != 1 else ()), size, size), dtype=np.float16)
        geometry = []
        for i, frame in enumerate(frames):
            plane = np.asarray(frame, dtype=np.float32)
            if channels != 1:  # a colour model: grey frames are repeated on its channels
                plane = np.repeat(plane[None], channels, axis=0) if plane.ndim == 2 else plane
            stack[i], box = letterbox(plane, size)
            geometry.append(box)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # frames have no patient ids
            manifest = Manifest(pd.DataFrame({"image": list(names)}), root="/", name="frames")
        covariates = self.covariates.transform(manifest.frame) if self.covariates.columns else None
        rows = np.arange(len(frames))
        dataset = self.task.make_dataset(
            manifest,
            rows,
            DecodedImages(stack, geometry, {}),
            covariates=covariates,
            augment=None,
            prep=self.preprocessing,
        )
        frame = self.task.predict_rows(self.model, manifest, dataset, batch_size=batch_size)
        frame["error"] = ""
        return frame

    def predict_video(
        self, path: str | Path, *, batch_size: int = 32, every: int = 1, max_frames: int | None = None
    ) -> tuple[pd.DataFrame, float]:
        """Predict a video frame by frame (frames read with PyAV, ``batch_size`` at a time).

        Returns:
            One row per kept frame (``image`` = ``<file>#frame=<i>``, ``frame``, ``time_s`` and the task's
            columns) and the achieved frames per second (reading + preprocessing + model, wall clock).
        """
        import time

        from osteon.io.video import read_frames

        path = Path(path)
        parts: list[pd.DataFrame] = []
        batch: list[Any] = []
        start = time.perf_counter()

        def flush() -> None:
            names = [f"{path.resolve()}#frame={f.index}" for f in batch]
            part = self.predict_frames([f.array for f in batch], names, batch_size=batch_size)
            part.insert(1, "frame", [f.index for f in batch])
            part.insert(2, "time_s", [f.time for f in batch])
            parts.append(part)
            batch.clear()

        for frame in read_frames(path, every=every, max_frames=max_frames):
            batch.append(frame)
            if len(batch) == batch_size:
                flush()
        if batch:
            flush()
        elapsed = time.perf_counter() - start
        table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        return table, (len(table) / elapsed if elapsed > 0 else float("nan"))

    @torch.inference_mode()
    def predict_image(self, path: str | Path, *, covariates: dict[str, Any] | None = None) -> Prediction:
        """The typed prediction for one file (see :mod:`osteon.tasks.predictions`), in its original pixels."""
        cov = None
        if self.covariates.columns:
            cov = torch.from_numpy(self.covariates.transform(pd.DataFrame([covariates or {}])))
        return self.task.predict_image(self.model, path, prep=self.preprocessing, covariates=cov)
