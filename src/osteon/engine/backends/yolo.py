"""Ultralytics YOLO as an optional detection backend (extra ``yolo``; Ultralytics is AGPL-3.0, never a core dependency).

Osteon stays in charge of the data and of the evaluation; Ultralytics only trains:

1. :func:`write_yolo_dataset` writes the run's Manifest as a YOLO dataset: every image decoded by Osteon
   (DICOM windowing, 16-bit, EXIF) and letterboxed to ``image_size`` exactly as Osteon's own models see
   it, saved as an 8-bit PNG, with ``class cx cy w h`` labels (normalised, in that letterboxed square;
   images without objects get an empty label file) and a ``data.yaml``.
2. :func:`fit_yolo_run` (the engine's ``yolo`` backend, chosen by ``backend: yolo``) trains the model's YAML
   (``yolov8n.yaml`` by default; ``yolo26n.yaml``, ``yolo26n-p2.yaml`` ... by ``--model``)
   (random weights: ``pretrained=False``; ``amp=False``, ``plots=False``, no font check, ``YOLO_OFFLINE=1``:
   nothing is downloaded) inside the run directory (``RUN/yolo/``), then exports the weights of Ultralytics'
   best epoch through :mod:`osteon.engine.export`, the same path as the Lightning loop.
3. Predictions go through :class:`osteon.models.detection.YoloDetector` (the same network and Ultralytics'
   NMS) on Osteon's letterboxed input, and are mapped back to original pixels by the detect task, so
   ``osteon evaluate``, ``osteon predict`` (images, video) and the metrics are the same for both backends.

Choices: Ultralytics' recipe (mosaic, scale, HSV, its optimiser and schedule) is kept, except horizontal
flips, which follow Osteon's ``hflip`` (off by default: laterality matters on radiographs). Ultralytics picks
its best epoch by its own fitness (0.1·mAP@0.5 + 0.9·mAP@0.5:0.95 on val), not by Osteon's mAP@0.5.
Resuming a YOLO run is not supported (start a new run).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import yaml
from PIL import Image as PILImage

from osteon.data.boxes import parse_boxes, to_input_space, xyxy_to_cxcywhn
from osteon.data.datasets import decode_images
from osteon.data.manifest import Manifest
from osteon.data.transforms import Preprocessing
from osteon.engine.backends import BACKENDS
from osteon.engine.rundir import RunDir
from osteon.errors import ConfigError


def require_ultralytics() -> Any:
    """Import Ultralytics offline, or raise :class:`ConfigError` naming the extra."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    try:
        import ultralytics
    except ImportError as exc:
        raise ConfigError(
            f"The YOLO backend needs Ultralytics ({exc}). Fix: pip install 'osteon[yolo]' "
            "(Ultralytics is AGPL-3.0 licensed, so it is optional)."
        ) from None
    return ultralytics


def write_yolo_dataset(
    manifest: Manifest,
    out_dir: str | Path,
    *,
    class_names: list[str],
    prep: Preprocessing,
    column: str = "boxes",
    splits: tuple[str, ...] = ("train", "val"),
    progress: bool = False,
) -> Path:
    """Write the labelled rows of ``splits`` as a YOLO dataset in Osteon's letterboxed input space.

    Files: ``images/<split>/<row>_<stem>.png`` (``S×S`` 8-bit), ``labels/<split>/<row>_<stem>.txt``
    (``class cx cy w h`` normalised by ``S``), ``data.yaml`` (absolute ``path``, ``names``), and
    ``rows.csv`` (file → Manifest row, for reading predictions back).

    Returns:
        The ``data.yaml`` path.

    Raises:
        DatasetFormatError / ConfigError: bad boxes (see :func:`osteon.data.boxes.parse_boxes`).
        ConfigError: a split has no usable image.
    """
    out = Path(out_dir)
    size = prep.image_size
    index = {n: i for i, n in enumerate(class_names)}
    listing = []
    for split in splits:
        rows = np.flatnonzero(
            (manifest.frame["split"] == split).fillna(False).to_numpy() & manifest.frame[column].notna().to_numpy()
        )
        decoded = decode_images(manifest.paths_of(rows), prep, progress=progress, description=f"yolo {split}")
        usable = decoded.readable()
        if len(usable) == 0:
            raise ConfigError(f"{manifest.name}: no readable labelled {split!r} images to write for YOLO.")
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for pos in usable:
            row, geometry = int(rows[pos]), decoded.geometry[pos]
            if geometry is None:  # never for a readable image
                continue
            image = str(manifest.frame.at[row, "image"])
            truth = parse_boxes(
                manifest.frame.at[row, column], class_index=index, image=image, size_hw=geometry.original_hw
            )
            name = f"{row:06d}_{Path(image).stem}"
            pixels = (decoded.stack[pos].astype(np.float32) * 255).round().clip(0, 255).astype(np.uint8)
            PILImage.fromarray(pixels).save(out / "images" / split / f"{name}.png")
            normalised = xyxy_to_cxcywhn(to_input_space(truth.boxes, geometry), width=size, height=size)
            lines = [
                f"{int(c)} " + " ".join(f"{v:.6f}" for v in box)
                for c, box in zip(truth.labels, normalised.clip(0, 1), strict=True)
            ]
            (out / "labels" / split / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
            listing.append(f"{split}/{name}.png,{row}")
    (out / "rows.csv").write_text("file,row\n" + "\n".join(listing) + "\n")
    data = {"path": str(out.resolve()), **{s: f"images/{s}" for s in splits}, "names": dict(enumerate(class_names))}
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return out / "data.yaml"


@contextlib.contextmanager
def offline_ultralytics() -> Iterator[Any]:
    """Ultralytics with every network path closed: ``YOLO_OFFLINE``, no font download, no hub events."""
    ultralytics = require_ultralytics()
    import ultralytics.data.utils as data_utils

    with mock.patch.object(data_utils, "check_font", lambda *args, **kwargs: None):
        yield ultralytics


ULTRALYTICS_FITNESS = "ultralytics fitness (0.1 mAP@0.5 + 0.9 mAP@0.5:0.95 on val)"  # how Ultralytics picks best.pt


@BACKENDS.register("yolo")
def fit_yolo_run(
    run: RunDir,
    cfg: Any,
    task: Any,
    *,
    resume: bool = False,
    progress: bool = True,
    options: dict[str, Any] | None = None,
) -> RunDir:
    """Train Ultralytics YOLO for a prepared run directory, then export it like every backend.

    Args:
        run: A run made by :func:`osteon.engine.prepare.prepare_run` (config, manifest with split, state with
            the plan).
        cfg: The run's TrainConfig (epochs, batch_size, image_size, seed, num_workers, hflip ...).
        task: The run's detect task (class names, plan).
        resume: Not supported for YOLO (raises).
        progress: Ultralytics' console output.
        options: Extra ``YOLO.train`` arguments (e.g. ``{"time": 0.2}`` hours of wall clock).

    Returns:
        The run directory, with ``model.pt``, ``predictions_val.csv``, the operating point and ``training.json``.
    """
    if resume:
        raise ConfigError("Resuming a YOLO-backend run is not supported. Fix: start a new run (--out).")
    import time

    import torch

    from osteon.engine.export import (
        LAST_EPOCH,
        calibrate_run,
        export_model,
        export_validation,
        record_selection,
        relative,
    )
    from osteon.models.detection import YoloDetector

    state = run.read_json(run.state)
    prep = Preprocessing(**state["preprocessing"])
    manifest = run.load_manifest()
    plan = task.state.extra["plan"]
    data_yaml = write_yolo_dataset(
        manifest,
        run.path / "yolo" / "dataset",
        class_names=task.class_names,
        prep=prep,
        column=task.state.target,
        progress=progress,
    )
    args: dict[str, Any] = {
        "data": str(data_yaml),
        "epochs": cfg.epochs,
        "imgsz": prep.image_size,
        "batch": cfg.batch_size,
        "workers": cfg.num_workers,
        "device": "0" if torch.cuda.is_available() and cfg.accelerator in ("auto", "gpu", "cuda") else "cpu",
        "project": str((run.path / "yolo").resolve()),
        "name": "train",
        "exist_ok": True,
        "pretrained": False,
        "amp": False,
        "plots": False,
        "seed": cfg.seed,
        "deterministic": cfg.deterministic,
        "fliplr": 0.5 if cfg.hflip else 0.0,
        "patience": cfg.early_stopping_patience or 100,
        "verbose": progress,
        **(options or {}),
    }
    started = time.perf_counter()
    with offline_ultralytics() as ultralytics:
        model = ultralytics.YOLO(f"{plan['architecture']}.yaml", task="detect")
        model.train(**args)
        weights = run.path / "yolo" / "train" / "weights"
        last = cfg.select_epoch == "last" or not (weights / "best.pt").is_file()
        best = weights / ("last.pt" if last else "best.pt")
        checkpoint = torch.load(best, map_location="cpu", weights_only=False)  # Ultralytics' own file, written above
    duration = time.perf_counter() - started
    trained = (checkpoint.get("ema") or checkpoint["model"]).float()
    wrapper = YoloDetector(task.spec)
    wrapper.net.load_state_dict(trained.state_dict())
    best_epoch = int(checkpoint.get("epoch", -1))

    def save(task: Any) -> Any:
        """Write model.pt; the validation predictions of the model it holds."""
        from osteon.engine.predictor import Predictor  # needs the model.pt written here

        export_model(
            run,
            cfg,
            task,
            state_dict=wrapper.state_dict(),
            best_epoch=best_epoch,
            best_checkpoint=relative(best, run),
            selected_by=LAST_EPOCH if cfg.select_epoch == "last" else ULTRALYTICS_FITNESS,
        )
        return Predictor.from_run(run.path).predict_manifest(val, progress=False)

    val = manifest.subset(manifest.frame["split"] == "val")
    frame = save(task)
    calibrated = task.calibrate(frame)
    if calibrated is not None:  # post-processing chosen on validation (as the Lightning backend does)
        task = calibrate_run(run, calibrated)
        frame = save(task)
    export_validation(run, task, frame)
    record_selection(  # Ultralytics selected by its own fitness, so no Osteon validation score is claimed
        run,
        task,
        best_epoch=best_epoch,
        best_score=None,
        epochs=cfg.epochs,
        backend="yolo",
        select_epoch=cfg.select_epoch,
        weights=relative(weights, run),
        duration_s=round(duration, 1),
    )
    return run


def train_yolo(cfg: Any = None, *, ultralytics_args: dict[str, Any] | None = None, **overrides: Any) -> RunDir:
    """Train the YOLO backend into a new run directory (Python API; the CLI uses ``--backend yolo``).

    Args:
        cfg: A TrainConfig (``task="detect"``), or pass its fields as ``overrides``; ``backend`` is set to yolo.
        ultralytics_args: Extra ``YOLO.train`` arguments, e.g. ``{"time": 0.25}`` (hours of wall clock).

    Returns:
        The RunDir, ready for ``osteon.engine.evaluate`` and ``Predictor.from_run``.

    Example:
        >>> run = train_yolo(task="detect", data="phantoms/manifest.csv", image_size=128, epochs=5,
        ...                  out="runs/yolo")  # doctest: +SKIP
    """
    from osteon.engine.config import TrainConfig
    from osteon.engine.prepare import prepare_run
    from osteon.tasks import TaskState, build_task

    require_ultralytics()
    cfg = TrainConfig.from_sources(**{**(cfg.model_dump() if cfg is not None else {}), **overrides, "backend": "yolo"})
    run = prepare_run(cfg)
    task = build_task(TaskState(**run.read_json(run.state)["task"]))
    return fit_yolo_run(run, cfg, task, options=ultralytics_args, progress=False)
