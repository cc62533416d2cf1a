"""``slices``: 2.5D classification of a volume (a series) — a 2D backbone per slice, slice features pooled.

Inputs: one Manifest row per series; its ``image`` names a volume (NIfTI, DICOM series folder, multi-frame DICOM)
and its ``label`` the series' (or exam's) class. Slices are taken along the volume's first axis **as stored** (the
acquisition's slice axis: a sagittal series gives sagittal slices, as MRNet used them), each slice resized to
``image_size`` × ``image_size`` and the whole volume scaled to [0, 1] by its 0.5–99.5 percentiles; prepared volumes
are cached to disk (``OSTEON_VOLUME_CACHE``) and read back memory-mapped. The model is
:class:`~osteon.models.slices.SliceModel` (``--slice-pooling max|mean|attention``); series of different lengths are
padded and masked. Targets, metrics (AUC with patient-bootstrap CIs, the operating point chosen on validation) and
the predictions table are those of ``classify``.

Limits of v1: grey input, no covariates, no augmentation, every slice of a series is used (no slice sampling).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from osteon.data.datasets import DecodedImages
from osteon.data.manifest import Manifest
from osteon.data.transforms import Preprocessing
from osteon.errors import ConfigError
from osteon.tasks._image import identity_frame
from osteon.tasks.base import TASKS, ClassPrediction, OutputWriter, TaskState
from osteon.tasks.classify import ClassificationTask

#: Most slices a series may have (a guard against a 3D file whose slice axis is not the first one).
MAX_SLICES = 512


def prepared_slices(path: Path, size: int) -> np.ndarray:
    """``(S, size, size)`` float32 in [0, 1]: the volume's slices (first axis as stored), resized, memory-mapped.

    Raises:
        VolumeError: the file is not a volume (a 2D image), or has more than :data:`MAX_SLICES` slices.
    """
    from osteon.data.volumes import VolumeError, read_volume
    from osteon.tasks.segment3d import cache_dir

    stat = path.stat()
    key = hashlib.sha1(f"slices|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{size}".encode()).hexdigest()
    target = cache_dir() / f"{key}.npy"
    if not target.is_file():
        values = np.asarray(read_volume(path).array, dtype=np.float32)
        if values.shape[0] > MAX_SLICES:
            raise VolumeError(
                f"{path}: {values.shape[0]} slices along the first axis (at most {MAX_SLICES}). Fix: store the series "
                "with the slice axis first, or crop it."
            )
        low, high = np.percentile(values, [0.5, 99.5])
        values = np.clip((values - low) / (high - low), 0, 1) if high > low else values * 0
        resized = nn.functional.interpolate(
            torch.from_numpy(values)[:, None], size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )[:, 0]
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(partial, resized.clamp(0, 1).numpy().astype(np.float32))
        partial.replace(target)
    return np.load(target, mmap_mode="r")


class SliceDataset(Dataset):
    """Items ``{"image": (S, 1, H, W) normalised, "target", "index"}``; ``targets`` as classify encodes them."""

    def __init__(self, volumes: list[np.ndarray], targets: np.ndarray, rows: np.ndarray, prep: Preprocessing) -> None:
        self.volumes, self.targets, self.indices, self.prep = volumes, np.asarray(targets), np.asarray(rows), prep

    def __len__(self) -> int:
        return len(self.volumes)

    def __getitem__(self, i: int) -> dict[str, Any]:
        image = torch.from_numpy(np.array(self.volumes[i], dtype=np.float32))[:, None]
        return {
            "image": (image - self.prep.mean) / self.prep.std,
            "target": torch.as_tensor(self.targets[i]),
            "index": int(self.indices[i]),
        }


def collate_series(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad series to the longest one: ``image`` ``(B, S, 1, H, W)`` and ``present`` ``(B, S)`` (False = padding)."""
    longest = max(int(it["image"].shape[0]) for it in items)
    shape = items[0]["image"].shape[1:]
    image = torch.zeros(len(items), longest, *shape)
    present = torch.zeros(len(items), longest, dtype=torch.bool)
    for b, it in enumerate(items):
        n = int(it["image"].shape[0])
        image[b, :n], present[b, :n] = it["image"], True
    return {
        "image": image,
        "present": present,
        "target": torch.stack([it["target"] for it in items]),
        "index": torch.tensor([it["index"] for it in items]),
    }


@TASKS.register("slices")
class SliceClassificationTask(ClassificationTask):
    """2.5D classification of series (see the module docstring); everything after the logits is ``classify``'s."""

    name: ClassVar[str] = "slices"
    volume_input: ClassVar[bool] = True
    colour_input: ClassVar[bool] = False
    collate_fn = staticmethod(collate_series)

    @classmethod
    def setup(
        cls, manifest: Manifest, *, target: str | None, positive_class: str | None, loss: str | None
    ) -> TaskState:
        state = ClassificationTask.setup(manifest, target=target, positive_class=positive_class, loss=loss)
        return TaskState("slices", state.target, state.class_names, state.positive_class, state.multilabel, state.loss)

    @classmethod
    def configure(cls, state: TaskState, cfg: Any) -> TaskState:
        from osteon.models.slices import POOLINGS

        pooling = str(getattr(cfg, "slice_pooling", None) or "attention")
        if pooling not in POOLINGS:
            raise ConfigError(
                f"slice_pooling={pooling!r} is not one of {', '.join(POOLINGS)}. Fix: --slice-pooling max."
            )
        state.extra = {**state.extra, "pooling": pooling, "image_size": int(cfg.image_size)}
        return state

    @property
    def pooling(self) -> str:
        return str(self.state.extra.get("pooling", "attention"))

    def build_model(self, *, model: str, pretrained: str | None, covariate_dim: int, dropout: float) -> nn.Module:
        from osteon.models.slices import create_slice_model

        if covariate_dim:
            raise ConfigError("task 'slices' does not use covariates yet. Fix: drop --covariates.")
        return create_slice_model(model, self.num_outputs, in_chans=1, pooling=self.pooling, pretrained=pretrained)

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
        volumes = [prepared_slices(p, prep.image_size) for p in manifest.paths_of(rows)]
        if self.state.target in manifest.frame:
            targets = self.targets(manifest)[rows]
        else:
            targets = np.zeros(len(rows), dtype=np.int64)
        return SliceDataset(volumes, targets, rows, prep)

    # -- model calls ----------------------------------------------------------------------------
    def training_loss(
        self, model: nn.Module, batch: dict[str, Any], class_weights: torch.Tensor | None
    ) -> torch.Tensor:
        return self.loss(model(batch["image"], batch["present"]), batch["target"], class_weights)

    def validation_records(self, model: nn.Module, batch: dict[str, Any]) -> list[Any]:
        scores = self.scores(model(batch["image"], batch["present"]))
        return list(zip(scores, batch["target"].cpu().numpy(), strict=True))

    @torch.inference_mode()
    def predict_rows(
        self,
        model: nn.Module,
        manifest: Manifest,
        dataset: Dataset,
        *,
        batch_size: int = 8,
        outputs: OutputWriter | None = None,
    ) -> pd.DataFrame:
        """classify's table plus ``key_slice``: the slice that weighed most in the pooling (0-based, as stored)."""
        was_training = model.training
        model.eval()
        chunks, key_slices = [], []
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_series):
            chunks.append(self.scores(model(batch["image"], batch["present"])))
            key_slices.extend(_key_slices(model))
        model.train(was_training)
        scores = np.concatenate(chunks) if chunks else np.zeros((0, self.num_outputs), dtype=np.float32)
        rows = dataset.indices  # type: ignore[attr-defined]
        table = self.prediction_frame(scores).reset_index(drop=True)
        table["key_slice"] = key_slices
        return pd.concat([identity_frame(manifest, rows, self.state, numeric=False), table], axis=1)

    @torch.inference_mode()
    def predict_image(
        self, model: nn.Module, path: str | Path, *, prep: Preprocessing, covariates: torch.Tensor | None = None
    ) -> ClassPrediction:
        """The prediction of one series (a volume file or DICOM series folder)."""
        x = series_input(path, prep)
        was_training = model.training
        model.eval()
        outputs = model(x)
        model.train(was_training)
        return self.predict(outputs)[0]


def series_input(path: str | Path, prep: Preprocessing) -> torch.Tensor:
    """The normalised ``(1, S, 1, H, W)`` model input of one series file."""
    image = torch.from_numpy(np.array(prepared_slices(Path(path), prep.image_size), dtype=np.float32))
    return ((image[:, None] - prep.mean) / prep.std)[None]


def _key_slices(model: nn.Module) -> list[int]:
    weights = getattr(model, "last_weights", None)
    return [] if weights is None else [int(i) for i in weights.argmax(1).tolist()]
