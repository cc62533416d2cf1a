"""``segment3d``: one structure in CT/MRI volumes (MONAI 3D U-Net / SegResNet, patches, 3D sliding window).

Inputs: the Manifest's ``image`` column names volumes (NIfTI files, DICOM series folders, multi-frame DICOM) and
its ``mask`` column label volumes on the same grid (any label > 0 is the structure; v1 segments one structure).
Every volume is reoriented to the canonical ``("S", "P", "L")`` axes, resampled to the run's spacing (the median
spacing of the training volumes, :meth:`Segment3DTask.plan`), scaled to [0, 1] by its 0.5–99.5 percentiles and
cached to disk as ``.npy`` (read back memory-mapped), so memory stays bounded by the patch and the batch, not by
the dataset. Training draws ``patch_size``³ patches, half centred on the structure; validation and prediction
slide the same window over whole volumes (MONAI, Gaussian blending). Metrics: Dice, HD95 and ASD in mm and the
structure's volume in mL, with bootstrap CIs by patient (:mod:`osteon.metrics.volumes`).

Limits of v1: one foreground structure; the predictions table scores masks on the canonical resampled grid and
writes no mask files (``predict_image`` maps the mask back onto the file's own grid); no covariates, no
augmentation beyond patch sampling.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from osteon.data.datasets import DecodedImages
from osteon.data.manifest import Manifest
from osteon.data.transforms import Preprocessing
from osteon.errors import ConfigError
from osteon.tasks._image import identity_frame
from osteon.tasks._targets import patient_groups, target_column
from osteon.tasks.base import TASKS, Monitor, OutputWriter, TaskBase, TaskState
from osteon.tasks.predictions import MaskPrediction


def cache_dir() -> Path:
    """Where prepared volumes are cached (``OSTEON_VOLUME_CACHE``, else a folder in the temp directory)."""
    return Path(os.environ.get("OSTEON_VOLUME_CACHE") or Path(tempfile.gettempdir()) / "osteon-volume-cache")


def prepared_volume(path: Path, spacing: tuple[float, float, float], *, label: bool) -> np.ndarray:
    """The canonical, resampled volume of ``path`` (image: float32 in [0, 1]; label: uint8 0/1), memory-mapped.

    The cache key is the file's path, size, modification time and the spacing, so an edited file is re-read.
    """
    from osteon.data.volumes import read_label_volume, read_volume, resample, to_canonical

    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{spacing}|{label}".encode()).hexdigest()
    target = cache_dir() / f"{key}.npy"
    if not target.is_file():
        volume = to_canonical(read_label_volume(path) if label else read_volume(path))
        volume = resample(volume, spacing, label=label)
        if label:
            array = (volume.array > 0).astype(np.uint8)
        else:
            values = volume.array.astype(np.float32)
            low, high = np.percentile(values, [0.5, 99.5])
            array = np.clip((values - low) / (high - low), 0, 1).astype(np.float32) if high > low else values * 0
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(partial, array)
        partial.replace(target)
    return np.load(target, mmap_mode="r")


class VolumeDataset(Dataset):
    """Training: ``{"image": (1, p, p, p), "mask": (1, p, p, p), "index"}`` random patches (half on the structure).
    Otherwise whole volumes ``(1, D, H, W)``."""

    def __init__(
        self,
        images: list[np.ndarray],
        masks: list[np.ndarray | None],
        rows: np.ndarray,
        prep: Preprocessing,
        *,
        patch: int | None,
        spacing: tuple[float, float, float],
    ) -> None:
        self.images, self.masks, self.indices = images, masks, np.asarray(rows)
        self.prep, self.patch, self.spacing = prep, patch, spacing

    #: Patches drawn from each training volume per epoch (an epoch over few large volumes would be a few steps).
    PATCHES_PER_VOLUME = 8

    def __len__(self) -> int:
        return len(self.images) * (self.PATCHES_PER_VOLUME if self.patch is not None else 1)

    def __getitem__(self, i: int) -> dict[str, Any]:
        i = i % len(self.images)
        image = np.asarray(self.images[i], dtype=np.float32)
        mask = self.masks[i]
        labels = np.asarray(mask, dtype=np.uint8) if mask is not None else np.zeros(image.shape, np.uint8)
        if self.patch is not None:
            image, labels = self._crop(image, labels, self.patch)
        return {
            "image": (torch.from_numpy(np.ascontiguousarray(image))[None] - self.prep.mean) / self.prep.std,
            "mask": torch.from_numpy(np.ascontiguousarray(labels))[None].float(),
            "has_mask": mask is not None,
            "index": int(self.indices[i]),
        }

    @staticmethod
    def _crop(image: np.ndarray, labels: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
        pad = [(0, max(0, p - s)) for s in image.shape]
        image, labels = np.pad(image, pad), np.pad(labels, pad)
        foreground = np.argwhere(labels > 0)
        if len(foreground) and np.random.rand() < 0.5:
            centre = foreground[np.random.randint(len(foreground))]
            start = [int(np.clip(c - p // 2, 0, s - p)) for c, s in zip(centre, image.shape, strict=True)]
        else:
            start = [np.random.randint(0, s - p + 1) for s in image.shape]
        window = tuple(slice(s, s + p) for s in start)
        return image[window], labels[window]


def collate_volumes(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack patches; whole volumes of different shapes stay a list."""
    shapes = {tuple(it["image"].shape) for it in items}
    stack = len(shapes) == 1
    return {
        "image": torch.stack([it["image"] for it in items]) if stack else [it["image"] for it in items],
        "mask": torch.stack([it["mask"] for it in items]) if stack else [it["mask"] for it in items],
        "has_mask": torch.tensor([bool(it["has_mask"]) for it in items]),
        "index": torch.tensor([it["index"] for it in items]),
    }


@TASKS.register("segment3d")
class Segment3DTask(TaskBase):
    """Binary 3D segmentation of one structure in volumes (see the module docstring)."""

    name: ClassVar[str] = "segment3d"
    monitor: ClassVar[Monitor] = Monitor("mean Dice (3D)", "max")
    volume_input: ClassVar[bool] = True
    prediction_type: ClassVar[type | None] = MaskPrediction
    collate_fn = staticmethod(collate_volumes)

    @classmethod
    def setup(
        cls, manifest: Manifest, *, target: str | None, positive_class: str | None, loss: str | None
    ) -> TaskState:
        column = target_column(manifest, target, "mask")
        if loss not in (None, "dice_ce"):
            raise ConfigError(f"loss={loss!r} is not available for segment3d; use dice_ce (the default).")
        return TaskState("segment3d", column, ["background", "structure"], None, False, "dice_ce", {})

    @classmethod
    def configure(cls, state: TaskState, cfg: Any) -> TaskState:
        from osteon.models.volumes import VOLUME_MODELS

        if cfg.model not in VOLUME_MODELS:
            raise ConfigError(
                f"segment3d needs a 3D model; {cfg.model!r} is not one. Fix: --model one of {', '.join(VOLUME_MODELS)}."
            )
        patch = int(cfg.patch_size or 32)
        if patch % 16:
            raise ConfigError(f"patch_size={patch} must be a multiple of 16 for the 3D U-Nets. Fix: --patch-size 32.")
        extra = {**state.extra, "patch_size": patch, "window_overlap": float(cfg.window_overlap)}
        return TaskState(state.name, state.target, state.class_names, None, False, state.loss, extra)

    @classmethod
    def plan(cls, state: TaskState, manifest: Manifest, cfg: Any) -> TaskState:
        """The run's spacing: the median spacing of the training volumes (read from their headers)."""
        from osteon.data.volumes import read_volume, to_canonical

        train = manifest.split("train")
        paths = train.paths_of(range(min(len(train), 50)))
        spacings = np.array([to_canonical(read_volume(p)).spacing for p in paths])
        spacing = [round(float(s), 4) for s in np.median(spacings, axis=0)]
        return TaskState(
            state.name,
            state.target,
            state.class_names,
            None,
            False,
            state.loss,
            {**state.extra, "spacing": spacing, "plan": {"spacing_mm": spacing, "volumes_read": len(paths)}},
        )

    @property
    def num_outputs(self) -> int:
        return 1

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(s) for s in self.state.extra.get("spacing", (1.0, 1.0, 1.0)))  # type: ignore[return-value]

    @property
    def patch(self) -> int:
        return int(self.state.extra.get("patch_size", 32))

    def build_model(self, *, model: str, pretrained: str | None, covariate_dim: int, dropout: float) -> nn.Module:
        from osteon.models.volumes import create_volume_model

        if covariate_dim:
            raise ConfigError("segment3d does not use covariates. Fix: drop --covariates.")
        if pretrained is not None:
            raise ConfigError(
                f"segment3d trains its volume network from random weights; --pretrained {pretrained} does not apply "
                "(pretrained backbones are 2D). Fix: drop --pretrained."
            )
        return create_volume_model(model, 1, 1)

    def missing_targets(self, manifest: Manifest) -> np.ndarray:
        values = manifest.frame[self.state.target]
        return (values.isna() | (values.astype("string").str.strip() == "")).to_numpy(bool)

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
        images = [prepared_volume(p, self.spacing, label=False) for p in manifest.paths_of(rows)]
        masks: list[np.ndarray | None] = []
        for r in rows:
            cell = manifest.frame[self.state.target].iloc[int(r)] if self.state.target in manifest.frame else None
            masks.append(
                None
                if cell is None or pd.isna(cell)
                else prepared_volume(manifest.resolve(str(cell)), self.spacing, label=True)
            )
        for image, mask, r in zip(images, masks, rows, strict=True):
            if mask is not None and mask.shape != image.shape:
                raise ConfigError(
                    f"{manifest.frame['image'].iloc[int(r)]}: its label volume is not on its grid "
                    f"({mask.shape} vs {image.shape}). Fix: resample the labels onto the image."
                )
        split = manifest.frame["split"].iloc[rows] if "split" in manifest.frame else pd.Series([], dtype="string")
        training = len(rows) > 0 and bool((split == "train").all())
        return VolumeDataset(images, masks, rows, prep, patch=self.patch if training else None, spacing=self.spacing)

    def training_loss(
        self, model: nn.Module, batch: dict[str, Any], class_weights: torch.Tensor | None
    ) -> torch.Tensor:
        from monai.losses import DiceCELoss

        return DiceCELoss(sigmoid=True)(model(batch["image"]), batch["mask"])

    def _probabilities(self, model: nn.Module, image: torch.Tensor) -> torch.Tensor:
        from osteon.models.volumes import sliding_window_logits

        overlap = float(self.state.extra.get("window_overlap", 0.25))
        logits = sliding_window_logits(model, image[None], roi=(self.patch,) * 3, overlap=overlap)
        return torch.sigmoid(logits)[0, 0]

    def _as_list(self, value: Any) -> list[torch.Tensor]:
        return list(value) if not isinstance(value, list) else value

    @torch.no_grad()
    def validation_records(self, model: nn.Module, batch: dict[str, Any]) -> list[Any]:
        from osteon.metrics.volumes import volume_metrics

        out = []
        for image, mask, has in zip(
            self._as_list(batch["image"]), self._as_list(batch["mask"]), batch["has_mask"], strict=True
        ):
            if has:
                pred = (self._probabilities(model, image) > 0.5).cpu().numpy()
                out.append(volume_metrics(mask[0].cpu().numpy() > 0, pred, self.spacing)["dice"])
        return out

    def monitor_records(self, records: list[Any]) -> float:
        return float(np.mean(records)) if records else float("nan")

    def predict(self, outputs: torch.Tensor, **kwargs: Any) -> list[MaskPrediction]:
        """``outputs``: ``(D, H, W)`` probabilities of one volume (canonical, resampled grid)."""
        probs = outputs.float().cpu().numpy()
        mask = (probs > 0.5).astype(np.uint8)
        voxel_ml = float(np.prod(self.spacing)) / 1000.0
        measurements = {"structure": {"volume_ml": float(mask.sum()) * voxel_ml, "voxels": int(mask.sum())}}
        return [MaskPrediction(mask, probs[None], ("background", "structure"), None, measurements)]

    @torch.inference_mode()
    def predict_rows(
        self,
        model: nn.Module,
        manifest: Manifest,
        dataset: Dataset,
        *,
        batch_size: int = 1,
        outputs: OutputWriter | None = None,
    ) -> pd.DataFrame:
        """One row per volume: ids, ``prediction`` (structure present or not), ``pred_ml``; with a reference also
        ``truth``, ``truth_ml``, ``dice``, ``hd95_mm``, ``asd_mm``, ``volume_error_ml``."""
        from osteon.metrics.volumes import volume_metrics

        ds: VolumeDataset = dataset  # type: ignore[assignment]
        was_training = model.training
        model.eval()
        records = []
        for i in range(len(ds.images)):
            item = ds[i]
            pred = (self._probabilities(model, item["image"]) > 0.5).cpu().numpy()
            record: dict[str, Any] = {
                "prediction": "structure" if pred.any() else "background",
                "pred_ml": float(pred.sum()) * float(np.prod(self.spacing)) / 1000.0,
                "spacing_mm": "x".join(f"{s:g}" for s in self.spacing),
            }
            if item["has_mask"]:
                truth = item["mask"][0].numpy() > 0
                record.update(volume_metrics(truth, pred, self.spacing))
                record["truth"] = "structure" if truth.any() else "background"
            records.append(record)
        model.train(was_training)
        frame = identity_frame(manifest, ds.indices, self.state, numeric=False).drop(columns=["truth"], errors="ignore")
        return pd.concat([frame, pd.DataFrame(records)], axis=1)

    @torch.inference_mode()
    def predict_image(
        self, model: nn.Module, path: str | Path, *, prep: Preprocessing, covariates: torch.Tensor | None = None
    ) -> MaskPrediction:
        """The mask of one volume, mapped back onto the file's own voxel grid (``spacing``: its ``(d, h, w)`` mm).

        The model sees the canonical grid at the run's spacing; its probabilities are resampled back to the file's
        spacing (linear), cropped or padded by at most a voxel to the file's shape and reoriented to its axes.
        """
        from dataclasses import replace

        from osteon.data.volumes import read_volume, resample, to_canonical

        image = torch.from_numpy(np.asarray(prepared_volume(Path(path), self.spacing, label=False)))[None]
        was_training = model.training
        model.eval()
        probs = self._probabilities(model, (image - prep.mean) / prep.std).float().cpu().numpy()
        model.train(was_training)
        original = read_volume(path)
        canonical = to_canonical(original)
        grid = replace(canonical, array=probs, spacing=self.spacing)
        back = resample(grid, canonical.spacing).array
        fitted = np.zeros(canonical.shape, dtype=np.float32)
        common = tuple(slice(0, min(a, b)) for a, b in zip(back.shape, canonical.shape, strict=True))
        fitted[common] = back[common]
        own = to_canonical(replace(canonical, array=fitted), original.axcodes).array
        prediction = self.predict(torch.from_numpy(np.ascontiguousarray(own)))[0]
        voxel_ml = float(np.prod(original.spacing)) / 1000.0
        prediction.measurements["structure"] = {
            "volume_ml": float(prediction.mask.sum()) * voxel_ml,
            "voxels": int(prediction.mask.sum()),
        }
        return replace(prediction, spacing=tuple(original.spacing))  # type: ignore[arg-type]

    def evaluate(
        self, frame: pd.DataFrame, *, operating_point: dict[str, Any] | None, n_resamples: int, seed: int
    ) -> dict[str, Any]:
        from osteon.metrics.volumes import volume_segmentation_report

        rows = frame[frame["dice"].notna()] if "dice" in frame else frame.iloc[:0]
        if rows.empty:
            raise ConfigError("no volumes with reference labels to evaluate. Fix: evaluate on labelled volumes.")
        keys = ("dice", "hd95_mm", "asd_mm", "truth_ml", "pred_ml", "volume_error_ml")
        records = [{k: float(r[k]) for k in keys} for _, r in rows.iterrows()]
        return volume_segmentation_report(records, groups=patient_groups(rows), n_resamples=n_resamples, seed=seed)
