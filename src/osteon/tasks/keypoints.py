"""``keypoints``: named landmarks per image by heat-map regression (a U-Net decoder, one map per landmark).

Targets come from a Manifest column (default ``keypoints``) of JSON lists ``[{"name": ..., "xy": [x, y]}]`` in
the ORIGINAL image's pixels (:mod:`osteon.data.keypoints`); any number of named points, missing points allowed
(they carry no loss and are not scored). The model is any registered segmentation network
(``osteon.models.segmentation``: ``unet`` with a timm/smp encoder, ``tiny_unet`` ...) with one output channel
per landmark; each channel is a spatial softmax trained with cross-entropy against a Gaussian around the point
(:mod:`osteon.models.keypoints`) and decoded to sub-pixel coordinates, then mapped back through the letterbox.

Evaluation (:func:`osteon.metrics.landmarks.landmark_report`): mean radial error in pixels and mm, success rates
within 2/2.5/4 mm, per landmark, with bootstrap CIs by patient; measurements computed from the points (Cobb,
HKA, acetabular index, Graf α: :mod:`osteon.metrics.measurements`) are compared with reference measurements
(Manifest columns of the same names, else those of the true points) by Bland–Altman.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset
from torchvision import tv_tensors

from osteon.data.datasets import DecodedImages
from osteon.data.keypoints import KEYPOINT_COLUMN, format_keypoints, keypoint_array, parse_keypoints, point_names
from osteon.data.manifest import Manifest
from osteon.data.transforms import Letterbox, Preprocessing, input_batch, load_unit_image, normalize, with_channels
from osteon.errors import ConfigError
from osteon.metrics.landmarks import landmark_report, measurement_report
from osteon.metrics.measurements import MEASUREMENTS, measurable, measure
from osteon.models.keypoints import decode_heatmaps, heatmap_loss
from osteon.tasks._image import identity_frame
from osteon.tasks._segment_infer import pixel_spacing
from osteon.tasks._targets import patient_groups, target_column
from osteon.tasks.base import TASKS, Monitor, OutputWriter, TaskBase, TaskState, input_channels
from osteon.tasks.predictions import PointPrediction


class KeypointDataset(Dataset):
    """Items ``{"image": (C, S, S), "points": (K, 2) input-space (x, y), "visible": (K,) bool, "index": int}``.

    With ``augment`` (torchvision v2, training only) the points move with the image (``tv_tensors.KeyPoints``);
    points pushed outside the input become invisible.
    """

    def __init__(
        self,
        images: np.ndarray,
        points: np.ndarray,
        rows: np.ndarray,
        prep: Preprocessing,
        *,
        geometry: list[Letterbox | None],
        augment: Callable[..., Any] | None = None,
    ) -> None:
        self.images = torch.from_numpy(images)
        self.points = torch.from_numpy(np.asarray(points, dtype=np.float32))
        self.indices = np.asarray(rows)
        self.geometry = geometry
        self.prep = prep
        self.augment = augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        image = with_channels(self.images[i].float())
        points = self.points[i].clone()
        visible = torch.isfinite(points).all(-1)
        points = torch.where(visible[:, None], points, torch.zeros_like(points))
        if self.augment is not None:
            size = tuple(image.shape[-2:])
            image, moved = self.augment(image, tv_tensors.KeyPoints(points, canvas_size=size))
            points = moved.as_subclass(torch.Tensor).reshape(-1, 2).clone()
            inside = (points >= 0).all(-1) & (points[:, 0] < size[1]) & (points[:, 1] < size[0])
            visible = visible & inside
            image = image.clamp(0, 1)
        return {
            "image": normalize(torch.as_tensor(image), self.prep),
            "points": points.float(),
            "visible": visible,
            "index": torch.tensor(int(self.indices[i])),
        }


def to_input(points: np.ndarray, geometry: Letterbox) -> np.ndarray:
    """Original-pixel ``(..., 2)`` points to the letterboxed input (``input = original · scale + pad``)."""
    return points * geometry.scale + np.array([geometry.pad_x, geometry.pad_y])


def to_original(points: np.ndarray, geometry: Letterbox) -> np.ndarray:
    """Input-space ``(..., 2)`` points back to the original pixels."""
    return (points - np.array([geometry.pad_x, geometry.pad_y])) / geometry.scale


@TASKS.register("keypoints")
class KeypointsTask(TaskBase):
    """Heat-map landmark regression; ``state.class_names`` holds the landmark names, in output-channel order."""

    name: ClassVar[str] = "keypoints"
    monitor: ClassVar[Monitor] = Monitor("MRE px", "min")
    colour_input: ClassVar[bool] = True
    prediction_type: ClassVar[type | None] = PointPrediction

    # -- set-up ---------------------------------------------------------------------------------
    @classmethod
    def setup(
        cls, manifest: Manifest, *, target: str | None, positive_class: str | None, loss: str | None
    ) -> TaskState:
        column = target_column(manifest, target, KEYPOINT_COLUMN)
        names = point_names(manifest.frame, column)
        if not names:
            raise ConfigError(
                f"{manifest.name}: column {column!r} holds no landmarks. "
                'Fix: fill it with [{"name": "hip_centre", "xy": [x, y]}, ...] in original pixels.'
            )
        if loss not in (None, "heatmap_ce"):
            raise ConfigError(f"loss={loss!r} is not available for keypoints; use heatmap_ce (the default).")
        return TaskState("keypoints", column, names, None, False, "heatmap_ce", {})

    @classmethod
    def configure(cls, state: TaskState, cfg: Any) -> TaskState:
        from osteon.models.segmentation import SEGMENTATION_MODELS

        if cfg.model not in SEGMENTATION_MODELS:
            raise ConfigError(
                f"keypoints needs a heat-map (segmentation) model; {cfg.model!r} is not one. "
                f"Fix: --model one of {', '.join(SEGMENTATION_MODELS.names())} (e.g. unet --encoder resnet18)."
            )
        if cfg.hflip:
            raise ConfigError(
                "hflip would swap left and right landmarks without renaming them. Fix: drop --hflip for keypoints."
            )
        extra = {
            **state.extra,
            "encoder": cfg.encoder,
            "image_size": int(cfg.image_size),
            "sigma": max(1.0, cfg.image_size / 48),
        }
        configured = TaskState(state.name, state.target, state.class_names, None, False, state.loss, extra)
        cls(configured).build_model(model=cfg.model, pretrained=None, covariate_dim=0, dropout=0.0)  # fail early
        return configured

    @property
    def names(self) -> list[str]:
        return list(self.state.class_names)

    @property
    def num_outputs(self) -> int:
        return len(self.names)

    # -- training -------------------------------------------------------------------------------
    def build_model(self, *, model: str, pretrained: str | None, covariate_dim: int, dropout: float) -> nn.Module:
        from osteon.models.segmentation import create_segmentation_model

        if covariate_dim:
            raise ConfigError("keypoints does not use covariates. Fix: drop --covariates.")
        net = create_segmentation_model(
            model,
            self.num_outputs,
            encoder=self.state.extra.get("encoder"),
            pretrained=pretrained,
            dropout=dropout,
            in_chans=input_channels(self.state),
        )
        size = int(self.state.extra.get("image_size") or 0)
        if size % net.divisor:
            fixed = max(net.divisor, round(size / net.divisor) * net.divisor)
            raise ConfigError(f"{model} needs sides that are multiples of {net.divisor}. Fix: --image-size {fixed}.")
        return net

    def missing_targets(self, manifest: Manifest) -> np.ndarray:
        """Rows without any annotated landmark."""
        points = keypoint_array(manifest.frame[self.state.target].tolist(), self.names)
        return ~np.isfinite(points).all(-1).any(-1)

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
        k = self.num_outputs
        points = np.full((len(rows), k, 2), np.nan, dtype=np.float64)
        if self.state.target in manifest.frame:
            original = keypoint_array(manifest.frame[self.state.target].iloc[rows].tolist(), self.names)
            for i, geometry in enumerate(decoded.geometry):
                if geometry is not None:
                    points[i] = to_input(original[i], geometry)
        return KeypointDataset(
            decoded.stack, points, np.asarray(rows), prep, geometry=list(decoded.geometry), augment=augment
        )

    @property
    def sigma(self) -> float:
        return float(self.state.extra.get("sigma", 2.0))

    def training_loss(
        self, model: nn.Module, batch: dict[str, Any], class_weights: torch.Tensor | None
    ) -> torch.Tensor:
        return heatmap_loss(model(batch["image"]), batch["points"], batch["visible"], self.sigma)

    @torch.no_grad()
    def validation_records(self, model: nn.Module, batch: dict[str, Any]) -> list[Any]:
        """Per-image radial errors (input pixels) of the visible landmarks."""
        points, _, _ = decode_heatmaps(model(batch["image"]))
        error = (points - batch["points"]).norm(dim=-1)
        visible = batch["visible"]
        return [e[v].cpu().numpy() for e, v in zip(error, visible, strict=True)]

    def monitor_records(self, records: list[Any]) -> float:
        """Negative validation mean radial error in input pixels (higher is better; ``monitor.natural`` gives MRE)."""
        values = np.concatenate([np.asarray(r, dtype=float) for r in records]) if records else np.zeros(0)
        return -float(values.mean()) if values.size else float("nan")

    # -- results --------------------------------------------------------------------------------
    def predict(self, outputs: torch.Tensor, **kwargs: Any) -> list[PointPrediction]:
        """Typed predictions of ``(B, K, S, S)`` logits; ``geometry`` maps them to original pixels."""
        geometry: list[Letterbox | None] = kwargs.get("geometry") or [None] * len(outputs)
        spacing: list[tuple[float, float] | None] = kwargs.get("spacing") or [None] * len(outputs)
        points, confidence, prob = decode_heatmaps(outputs)
        out = []
        for b in range(len(outputs)):
            xy = points[b].cpu().numpy().astype(np.float64)
            if geometry[b] is not None:
                xy = to_original(xy, geometry[b])  # type: ignore[arg-type]
            out.append(
                PointPrediction(
                    xy,
                    confidence[b].cpu().numpy(),
                    tuple(self.names),
                    heatmaps=prob[b].cpu().numpy().astype(np.float32) if kwargs.get("heatmaps") else None,
                    spacing=spacing[b],
                    measurements=measure(dict(zip(self.names, xy, strict=True))),
                )
            )
        return out

    @torch.inference_mode()
    def predict_rows(
        self,
        model: nn.Module,
        manifest: Manifest,
        dataset: Dataset,
        *,
        batch_size: int = 32,
        outputs: OutputWriter | None = None,
    ) -> pd.DataFrame:
        """One row per image: ids, ``truth``/``prediction`` (JSON points, original pixels), ``spacing_row/col``,
        ``x_<name>``/``y_<name>``/``conf_<name>``, ``radial_error_px`` (image mean), and for every measurement the
        points allow, ``<measurement>`` (from the predicted points) and ``<measurement>_reference`` (the Manifest's
        column of that name, else from the true points)."""
        ds: KeypointDataset = dataset  # type: ignore[assignment]
        was_training = model.training
        model.eval()
        predictions: list[PointPrediction] = []
        for start in range(0, len(ds), max(1, batch_size)):
            stop = min(len(ds), start + max(1, batch_size))
            chunk = ds.images[start:stop].float()
            images = normalize(chunk[:, None] if chunk.ndim == 3 else chunk, ds.prep)
            rows = [int(r) for r in ds.indices[start:stop]]
            spacing = [
                pixel_spacing(manifest.frame, r, manifest.resolve(str(manifest.frame["image"].iat[r]))) for r in rows
            ]
            predictions += self.predict(model(images), geometry=ds.geometry[start:stop], spacing=spacing)
        model.train(was_training)
        rows = np.asarray(ds.indices)
        frame = identity_frame(manifest, rows, self.state, numeric=False)
        has_truth = self.state.target in manifest.frame
        truth = keypoint_array(manifest.frame[self.state.target].iloc[rows].tolist(), self.names) if has_truth else None
        records = []
        for i, prediction in enumerate(predictions):
            record: dict[str, Any] = {
                "prediction": format_keypoints(self.names, prediction.points),
                "spacing_row": prediction.spacing[0] if prediction.spacing else np.nan,
                "spacing_col": prediction.spacing[1] if prediction.spacing else np.nan,
            }
            for k, name in enumerate(self.names):
                record[f"x_{name}"], record[f"y_{name}"] = prediction.points[k]
                record[f"conf_{name}"] = float(prediction.confidence[k])
            record.update(prediction.measurements)
            if truth is not None:
                record["truth"] = format_keypoints(self.names, truth[i]) if np.isfinite(truth[i]).any() else pd.NA
                error = np.hypot(*(prediction.points - truth[i]).T)
                record["radial_error_px"] = float(np.nanmean(error)) if np.isfinite(error).any() else np.nan
                reference = measure(dict(zip(self.names, truth[i], strict=True)))
                for m in prediction.measurements:
                    given = manifest.frame[m].iloc[rows[i]] if m in manifest.frame else np.nan
                    value = pd.to_numeric(pd.Series([given]), errors="coerce").iloc[0]
                    record[f"{m}_reference"] = float(value) if np.isfinite(value) else reference.get(m, np.nan)
            records.append(record)
        body = pd.DataFrame(records, index=range(len(records)))
        frame = frame.drop(columns=["truth"], errors="ignore")
        return pd.concat([frame, body], axis=1)

    @torch.inference_mode()
    def predict_image(
        self, model: nn.Module, path: str | Path, *, prep: Preprocessing, covariates: torch.Tensor | None = None
    ) -> PointPrediction:
        """Landmarks of one 2D image file in its original pixels, with the heat maps (for overlays)."""
        unit, geometry = load_unit_image(path, prep)
        was_training = model.training
        model.eval()
        logits = model(input_batch(unit, prep))
        model.train(was_training)
        spacing = pixel_spacing(pd.DataFrame(), 0, Path(path))
        return self.predict(logits, geometry=[geometry], spacing=[spacing], heatmaps=True)[0]

    def evaluate(
        self, frame: pd.DataFrame, *, operating_point: dict[str, Any] | None, n_resamples: int, seed: int
    ) -> dict[str, Any]:
        """Radial errors and success rates with CIs, per landmark, and measurement agreement (Bland–Altman)."""
        rows = frame[frame["truth"].notna()] if "truth" in frame else frame.iloc[:0]
        if rows.empty:
            raise ConfigError("no rows with reference landmarks to evaluate. Fix: evaluate on annotated images.")
        truth = keypoint_array(rows["truth"].tolist(), self.names)
        pred = keypoint_array(rows["prediction"].tolist(), self.names)
        spacing = None
        if {"spacing_row", "spacing_col"} <= set(rows.columns):
            spacing = rows[["spacing_row", "spacing_col"]].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        groups = patient_groups(rows)
        report = landmark_report(
            truth, pred, point_names=self.names, spacing=spacing, groups=groups, n_resamples=n_resamples, seed=seed
        )
        names = [m for m in measurable(self.names) if m in rows and f"{m}_reference" in rows]
        reference = {m: pd.to_numeric(rows[f"{m}_reference"], errors="coerce").to_numpy(float) for m in names}
        predicted = {m: pd.to_numeric(rows[m], errors="coerce").to_numpy(float) for m in names}
        report["measurements"] = measurement_report(
            reference, predicted, groups=groups, n_resamples=n_resamples, seed=seed
        )
        report["units"] = {m: MEASUREMENTS[m].unit for m in report["measurements"]}
        return report


def parse_prediction_cell(cell: Any) -> dict[str, tuple[float, float] | None]:
    """``{name: (x, y)}`` of a ``prediction``/``truth`` cell of a keypoints predictions table."""
    return parse_keypoints(cell) or {}


__all__ = ["KeypointDataset", "KeypointsTask", "parse_prediction_cell"]
