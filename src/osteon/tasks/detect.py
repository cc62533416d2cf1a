"""``detect``: boxes on radiographs (fractures, lesions): Osteon's heat-map detector (default, ``centernet``),
torchvision's RetinaNet/FCOS/Faster R-CNN, or, optionally, Ultralytics YOLO.

Targets are the Manifest's ``boxes`` column (JSON ``[{"xyxy": [x1, y1, x2, y2], "label": name}]`` in
original pixels); ``"[]"`` is an image without objects (a valid negative), a missing value is an
unlabelled image (left out). Class names are the distinct box labels; background is implicit.

Geometry: the engine letterboxes images to ``image_size``; boxes go into that input space with the
image's :class:`~osteon.data.transforms.Letterbox` (``input = original * scale + pad``), are augmented
jointly with the image (torchvision v2), and predictions are mapped back to original pixels.

Outputs: ``predictions_<split>.csv`` with ``truth`` (true boxes), ``pred_boxes`` (JSON boxes with
``score``, original pixels), ``n_boxes`` and ``max_score`` (image-level score); overlays are drawn by
``osteon.report``. Validation score (checkpointing, early stopping): mAP@0.5.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from osteon.data.boxes import (
    ImageBoxes,
    box_records,
    boxes_to_records,
    parse_box_column,
    parse_boxes,
    records_to_json,
    to_original_space,
)
from osteon.data.datasets import DecodedImages
from osteon.data.manifest import Manifest
from osteon.data.transforms import Letterbox, Preprocessing
from osteon.errors import ConfigError, DatasetFormatError
from osteon.metrics import detection as det_metrics
from osteon.models.detection import NATIVE_DETECTORS, DetectorSpec, build_detector
from osteon.tasks._box_scale import choose_box_scale, scale_boxes
from osteon.tasks._detect_data import DetectionDataset, collate_detection
from osteon.tasks._detect_plan import make_plan, resolve_architecture
from osteon.tasks._image import identity_frame
from osteon.tasks._targets import patient_groups
from osteon.tasks.base import TASKS, Monitor, OutputWriter, TaskBase, TaskState
from osteon.tasks.predictions import BoxPrediction

# boxes narrower than this (original pixels) are dropped: predictions_<split>.csv keeps 2 decimals, which would
# round them to nothing (a box that lies in the letterbox's padding, or scaled by the box scale, becomes 0 wide)
MIN_SIDE_PX = 0.02
OPERATING_FP_PER_IMAGE = 1.0  # the operating point chosen on validation: the lowest score with ≤ 1 FP/image
# the heat-map detector from random weights: phantoms test mAP@0.5 0.38 at 1e-3, 1.00 at 3e-3 (6e-3 tried on
# FracAtlas: no better in the side-by-side benchmark, docs/decisions.md)
CENTERNET_LR = 3e-3
# validation on whole images costs about as much as an epoch of training on crops; the last epoch always validates.
# At most 5 % of the training time goes to validating: a 10-minute FracAtlas run validates 2-3 times and trains about
# 17 % more epochs than validating every fifth one (docs/decisions.md, session 30)
CENTERNET_VAL_EVERY = 5
CENTERNET_VAL_MAX_SHARE = 0.05
# the input side and batch the benchmark's default detector trains at (BENCHMARKS.md §4; `osteon plan` plans at
# least 512 px for detection too): small findings keep their pixels, and the training crops are sized from the
# boxes, so a step costs the same at any input side. Batch 32, the engine-wide default, trained worse in the
# first 20 epochs of an 8-minute FracAtlas probe than batch 8 (docs/decisions.md).
CENTERNET_IMAGE_SIZE = 512
CENTERNET_BATCH_SIZE = 8


@TASKS.register("detect")
class DetectionTask(TaskBase):
    """Boxes per image: centernet (default), torchvision RetinaNet/FCOS/Faster R-CNN, or Ultralytics YOLO
    (``backend="yolo"``)."""

    name: ClassVar[str] = "detect"
    prediction_type: ClassVar[type | None] = BoxPrediction
    monitor: ClassVar[Monitor] = Monitor("mAP@0.5", "max")
    collate_fn: Callable[[list[Any]], Any] | None = staticmethod(collate_detection)

    # -- set-up ---------------------------------------------------------------------------------
    @classmethod
    def setup(
        cls, manifest: Manifest, *, target: str | None, positive_class: str | None, loss: str | None
    ) -> TaskState:
        """Class names from the box labels of every labelled row (each row's JSON is checked)."""
        column = target or "boxes"
        if column not in manifest.frame or manifest.frame[column].isna().all():
            raise ConfigError(
                f"{manifest.name}: no {column!r} column with boxes to learn from. Fix: load a detection dataset "
                "(COCO, YOLO, Pascal VOC, FracAtlas) or pass --target with the column of JSON boxes."
            )
        if loss not in (None, "default"):
            raise ConfigError(f"loss={loss!r}: detectors use their own losses (focal/GIoU ...); leave --loss out.")
        names: set[str] = set()
        images = manifest.frame["image"].astype(str).to_numpy()
        for row, value in enumerate(manifest.frame[column]):
            where = f"{manifest.name}: row {row} ({images[row]})"
            try:
                names.update(b["label"] for b in box_records(value, image=where, column=column))
            except DatasetFormatError as exc:
                raise ConfigError(f"{exc} Or, if {column!r} is not the box column, pass --target with it.") from None
        if not names:
            raise ConfigError(f"{manifest.name}: column {column!r} has no boxes at all; a detector needs some.")
        return TaskState("detect", column, sorted(names), None, False, "default")

    @classmethod
    def recipe_defaults(cls, cfg: Any) -> dict[str, Any]:
        """The default detector (centernet) trains at ``CENTERNET_LR``, at ``CENTERNET_IMAGE_SIZE`` px in batches of
        ``CENTERNET_BATCH_SIZE`` (the benchmark's recipe), in channels-last memory (its depthwise
        convolutions run about 1.3x faster that way on CPUs, in training and inference), keeps its last epoch
        (the annealed end of the schedule; on FracAtlas it scored as well or better on test than the epoch picked by
        mAP on 73 validation images in 8 of 9 runs) and validates every ``CENTERNET_VAL_EVERY`` epochs while that
        takes at most ``CENTERNET_VAL_MAX_SHARE`` of the training time (it trains on crops and validates on whole
        images: on FracAtlas one validation cost as much as 0.7 training epochs); docs/decisions.md. The config's
        own values win."""
        model = cfg.model if "model" in cfg.model_fields_set else None
        architecture, _ = resolve_architecture(model, cfg.encoder, cfg.backend)
        if architecture not in NATIVE_DETECTORS:
            return {}
        return {
            "lr": CENTERNET_LR,
            "image_size": CENTERNET_IMAGE_SIZE,
            "batch_size": CENTERNET_BATCH_SIZE,
            "channels_last": True,
            "select_epoch": "last",
            "val_every": CENTERNET_VAL_EVERY,
            "val_max_share": CENTERNET_VAL_MAX_SHARE,
        }

    @classmethod
    def plan(cls, state: TaskState, manifest: Manifest, cfg: Any) -> TaskState:
        """Engine hook: derive anchors/sizes from the train boxes into ``state.extra["plan"]`` (the engine saves it)."""
        if cfg.covariates:
            raise ConfigError("detect takes no covariates (--covariates); remove them.")
        prep = Preprocessing(image_size=cfg.image_size)
        plan = make_plan(
            manifest,
            column=state.target,
            class_names=state.class_names,
            model=cfg.model if "model" in getattr(cfg, "model_fields_set", {"model"}) else None,  # None: the default
            encoder=cfg.encoder,
            backend=cfg.backend,
            image_size=cfg.image_size,
            patch_size=getattr(cfg, "patch_size", None),
            score_threshold=cfg.score_threshold,
            flip_test=getattr(cfg, "flip_test", True),
            input_mean=prep.mean,
            input_std=prep.std,
        )
        extra = {**state.extra, "plan": plan}
        box_scale = getattr(cfg, "box_scale", None)
        if box_scale is not None:  # the user's factor; calibrate() then keeps it
            extra["calibration"] = {"box_scale": float(box_scale), "chosen_on": "config"}
        return replace(state, extra=extra)

    @property
    def class_names(self) -> list[str]:
        return self.state.class_names

    @property
    def num_outputs(self) -> int:
        return len(self.class_names)

    @property
    def spec(self) -> DetectorSpec:
        plan = self.state.extra.get("plan")
        if not plan:
            raise ConfigError("This detection state has no plan; train through osteon.engine.train, which makes it.")
        return DetectorSpec.from_dict(plan)

    @property
    def class_index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.class_names)}

    # -- engine hooks: training -----------------------------------------------------------------
    def build_model(self, *, model: str, pretrained: str | None, covariate_dim: int, dropout: float) -> nn.Module:
        if covariate_dim:
            raise ConfigError("detect takes no covariates; train without --covariates.")
        return build_detector(self.spec, pretrained=pretrained)

    def missing_targets(self, manifest: Manifest) -> np.ndarray:
        """Rows whose ``boxes`` is missing (unlabelled); ``"[]"`` is a labelled image without objects."""
        if self.state.target not in manifest.frame:
            return np.ones(len(manifest), dtype=bool)
        return manifest.frame[self.state.target].isna().to_numpy()

    def make_dataset(
        self,
        manifest: Manifest,
        rows: np.ndarray,
        decoded: DecodedImages,
        *,
        covariates: np.ndarray | None,
        augment: Callable[..., Any] | None,
        prep: Preprocessing,
    ) -> Dataset:
        """Validated boxes (sizes, inside the image, known classes) mapped into the letterboxed input."""
        geometry: list[Letterbox] = [g for g in decoded.geometry]  # type: ignore[misc]
        targets = [
            self.true_boxes(manifest, int(row), size_hw=g.original_hw) for row, g in zip(rows, geometry, strict=True)
        ]
        split = manifest.frame["split"].iloc[rows] if "split" in manifest.frame else pd.Series([], dtype="string")
        training = len(rows) > 0 and bool((split == "train").all())  # crops for training; whole images otherwise
        crop = self.state.extra.get("plan", {}).get("train_crop") if training else None
        return DetectionDataset(
            decoded.stack, targets, geometry, prep, augment=augment, indices=np.asarray(rows), crop=crop
        )

    def true_boxes(self, manifest: Manifest, row: int, *, size_hw: tuple[int, int] | None = None) -> ImageBoxes:
        """The validated true boxes of one Manifest row (none when the column is absent or empty)."""
        column = self.state.target
        value = manifest.frame.at[row, column] if column in manifest.frame else None
        return parse_boxes(
            value, class_index=self.class_index, image=str(manifest.frame.at[row, "image"]), size_hw=size_hw
        )

    def training_loss(
        self, model: nn.Module, batch: dict[str, Any], class_weights: torch.Tensor | None
    ) -> torch.Tensor:
        losses = model.losses(batch["image"], batch["targets"])  # type: ignore[operator]
        return sum(losses.values())  # type: ignore[return-value]

    def validation_records(self, model: nn.Module, batch: dict[str, Any]) -> list[Any]:
        """Per image ``(pred ImageBoxes, true ImageBoxes)`` in input pixels (IoU does not change with scale)."""
        outputs = model(batch["image"])
        records = []
        for out, target in zip(outputs, batch["targets"], strict=True):
            pred = ImageBoxes(_np(out["boxes"]), _np(out["labels"]).astype(np.int64), _np(out["scores"]))
            true = ImageBoxes(_np(target["boxes"]), _np(target["labels"]).astype(np.int64))
            records.append((pred, true))
        return records

    def monitor_records(self, records: list[Any]) -> float:
        """Validation mAP@0.5 (pycocotools)."""
        preds, truth = [r[0] for r in records], [r[1] for r in records]
        if not any(len(t) for t in truth):
            return float("nan")
        return det_metrics.coco_map_scores(truth, preds, n_classes=self.num_outputs)["map50"]

    @property
    def spec_backend(self) -> str:
        """The plan's model family: ``torchvision`` or ``yolo``."""
        return str(self.state.extra.get("plan", {}).get("backend", "torchvision"))

    @property
    def trainer_backend(self) -> str:
        """Torchvision detectors train in the Lightning loop; YOLO in the engine's Ultralytics backend."""
        return "lightning" if self.spec_backend == "torchvision" else self.spec_backend

    # -- predictions ----------------------------------------------------------------------------
    @torch.inference_mode()
    def predict_rows(
        self,
        model: nn.Module,
        manifest: Manifest,
        dataset: Dataset,
        *,
        batch_size: int = 16,
        outputs: OutputWriter | None = None,
    ) -> pd.DataFrame:
        """One row per image: identifiers, ``truth`` (when known), ``pred_boxes`` (JSON, original pixels),
        ``n_boxes``, ``max_score``, ``width``, ``height``. Boxes are table cells, so ``outputs`` is unused."""
        from torch.utils.data import DataLoader

        was_training = model.training
        model.eval()
        predictions: list[BoxPrediction] = []
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_detection):
            geometry = [dataset.geometry[int(p)] for p in batch["position"]]  # type: ignore[attr-defined]
            predictions.extend(self.predict(model(batch["image"]), geometry=geometry))
        model.train(was_training)
        rows = np.asarray(dataset.indices)  # type: ignore[attr-defined]
        frame = identity_frame(manifest, rows, self.state, numeric=False)
        frame["pred_boxes"] = [
            records_to_json(
                boxes_to_records(p.boxes_xyxy, [self.class_index[n] for n in p.labels], self.class_names, p.scores)
            )
            for p in predictions
        ]
        frame["n_boxes"] = [len(p.scores) for p in predictions]
        frame["max_score"] = [float(p.scores.max()) if len(p.scores) else 0.0 for p in predictions]
        frame["height"] = [g.original_hw[0] for g in dataset.geometry]  # type: ignore[attr-defined]
        frame["width"] = [g.original_hw[1] for g in dataset.geometry]  # type: ignore[attr-defined]
        return frame

    def predict(
        self, outputs: list[dict[str, torch.Tensor]], *, geometry: list[Letterbox] | None = None, **kwargs: Any
    ) -> list[BoxPrediction]:
        """Typed predictions; boxes in original pixels when ``geometry`` is given, else in input pixels; scaled
        about their centres by :attr:`box_scale`."""
        names = tuple(self.class_names)
        factor = self.box_scale
        out = []
        for k, o in enumerate(outputs):
            boxes, scores, labels = _np(o["boxes"]).astype(np.float64), _np(o["scores"]), _np(o["labels"]).astype(int)
            boxes = scale_boxes(boxes, factor)
            if geometry is not None:
                boxes = to_original_space(boxes, geometry[k])
                sides = boxes[:, 2:] - boxes[:, :2]  # a box in the letterbox's padding is clipped to nothing
                keep = (sides >= MIN_SIDE_PX).all(axis=1) & (labels >= 0)
                boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            order = np.argsort(-scores, kind="stable")
            out.append(BoxPrediction(boxes[order], scores[order], tuple(names[i] for i in labels[order]), names))
        return out

    @torch.inference_mode()
    def predict_image(
        self, model: nn.Module, path: str | Path, *, prep: Preprocessing, covariates: torch.Tensor | None = None
    ) -> BoxPrediction:
        """The :class:`BoxPrediction` of one 2D image file, boxes in its original pixels (``Predictor`` hook)."""
        from osteon.data.transforms import load_unit_image, normalize

        unit, geometry = load_unit_image(path, prep)
        was_training = model.training
        model.eval()
        outputs = model(normalize(torch.from_numpy(unit)[None, None], prep))
        model.train(was_training)
        return self.predict(outputs, geometry=[geometry])[0]

    # -- evaluation -----------------------------------------------------------------------------
    def _parse_frame(self, frame: pd.DataFrame) -> tuple[list[ImageBoxes], list[ImageBoxes]]:
        truth = parse_box_column(frame["truth"], frame["image"], class_index=self.class_index)
        preds = parse_box_column(frame["pred_boxes"], frame["image"], class_index=self.class_index, scored=True)
        return truth, preds

    @property
    def box_scale(self) -> float:
        """The factor predicted boxes are scaled by about their centres (``state.extra["calibration"]``; 1: none)."""
        return float(self.state.extra.get("calibration", {}).get("box_scale", 1.0))

    def calibrate(self, frame: pd.DataFrame) -> TaskState | None:
        """The box scale chosen on validation predictions (``tasks/_box_scale.py``) as a new state, or ``None``
        when it stays: a factor given in the config (``box_scale``), no labelled boxes, or the same choice as
        before (a resumed run's predictions carry its earlier factor, which is undone before choosing again)."""
        current = self.state.extra.get("calibration", {})
        if "error" in frame:  # unreadable images have no boxes to compare
            frame = frame[frame["error"].fillna("") == ""]
        if current.get("chosen_on") == "config" or "truth" not in frame or frame["truth"].isna().all():
            return None
        truth, preds = self._parse_frame(frame[frame["truth"].notna()])
        own = [replace(p, boxes=scale_boxes(p.boxes, 1 / self.box_scale)) for p in preds]  # the network's boxes
        chosen = choose_box_scale(truth, own, n_classes=len(self.class_names))
        if chosen is None or chosen["box_scale"] == current.get("box_scale"):
            return None
        return replace(self.state, extra={**self.state.extra, "calibration": chosen})

    def choose_operating_point(self, frame: pd.DataFrame) -> dict[str, Any] | None:
        """The lowest box score with ≤ 1 false positive per image on validation (FROC hit rule IoU ≥ 0.5)."""
        if "truth" not in frame or frame["truth"].isna().all():
            return None
        labelled = frame[frame["truth"].notna()]
        truth, preds = self._parse_frame(labelled)
        threshold = det_metrics.choose_score_threshold(truth, preds, fp_per_image=OPERATING_FP_PER_IMAGE)
        if not np.isfinite(threshold):
            return None
        return {
            "threshold": threshold,
            "method": f"fp_per_image<={OPERATING_FP_PER_IMAGE:g}",
            "chosen_on": "val",
            "n": len(labelled),
        }

    def evaluate(
        self, frame: pd.DataFrame, *, operating_point: dict[str, Any] | None, n_resamples: int, seed: int
    ) -> dict[str, Any]:
        """mAP@0.5, mAP@0.5:0.95, per-class AP, FROC, image-level AUC with CIs (patients resampled when known)."""
        truth, preds = self._parse_frame(frame)
        groups = patient_groups(frame)
        threshold = float(operating_point["threshold"]) if operating_point else None
        result = det_metrics.detection_report(
            truth,
            preds,
            class_names=self.class_names,
            groups=groups,
            n_resamples=n_resamples,
            seed=seed,
            score_threshold=threshold,
        )
        result["operating_point"] = operating_point or {"threshold": None, "method": "none (no val predictions)"}
        result["backend"] = self.spec_backend
        return result


def _np(t: torch.Tensor | np.ndarray) -> np.ndarray:
    return t.detach().float().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
