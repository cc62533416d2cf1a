"""Segmentation targets from Manifest rows, and the torch Dataset the segment task trains on.

Two sources, told apart by the column's content:
    * ``polygons`` (JSON lists, e.g. FracAtlas' COCO polygons): ``"[]"`` is a valid all-background target,
      NA means "not annotated" (the row is left out of training and evaluation).
    * ``mask`` (paths of label-map files: PNG/TIFF, NIfTI, DICOM): NA means all background.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from osteon.data.boxes import json_list
from osteon.data.manifest import Manifest
from osteon.data.masks import (
    encode_label_map,
    label_map_to_input,
    letterbox_polygons,
    mask_values,
    rasterize_polygons,
    read_label_map,
)
from osteon.data.transforms import Letterbox, Preprocessing, normalize
from osteon.errors import ConfigError

POLYGONS, MASK = "polygons", "mask"
BACKGROUND = "background"


@dataclass(frozen=True)
class TargetSpec:
    """How a Manifest column becomes masks.

    Attributes:
        column: The Manifest column.
        source: ``"polygons"`` or ``"mask"``.
        class_names: ``["background", *foreground]``; class ``k`` is ``class_names[k]``.
        multilabel: Foreground classes may overlap (one sigmoid channel each) instead of excluding each other.
        mask_values: For label maps: the raw file value of each class (``mask_values[0] == 0``).
    """

    column: str
    source: str
    class_names: tuple[str, ...]
    multilabel: bool = False
    mask_values: tuple[int, ...] | None = None

    @property
    def foreground(self) -> list[str]:
        return list(self.class_names[1:])

    @property
    def class_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.class_names) if i > 0}


# -- set-up: which column, which classes ------------------------------------------------------------------------
def detect_source(manifest: Manifest, column: str | None) -> tuple[str, str]:
    """``(column, source)``: ``--target`` if given, else ``mask`` when it has values, else ``polygons``."""
    if column is None:
        column = MASK if manifest.has(MASK) else POLYGONS if manifest.has(POLYGONS) else None
        if column is None:
            raise ConfigError(
                f"{manifest.name}: no masks to learn from: neither a 'mask' column (label-map files) nor a 'polygons' "
                "column (JSON) has values. Fix: load a dataset with masks/polygons or pass --target COLUMN."
            )
    if column not in manifest.frame or not manifest.frame[column].notna().any():
        usable = [c for c in manifest.columns if manifest.frame[c].notna().any()]
        raise ConfigError(f"{manifest.name}: column {column!r} has no values. Columns with values: {usable}.")
    first = str(manifest.frame[column].dropna().iloc[0]).lstrip()
    return column, POLYGONS if first.startswith("[") else MASK


def polygon_classes(manifest: Manifest, column: str) -> tuple[list[str], bool]:
    """Sorted polygon labels and whether polygons of different labels overlap in any image (multi-label)."""
    names: set[str] = set()
    overlap = False
    for i, value in enumerate(manifest.frame[column]):
        polygons = _parse(value, manifest, i, column)
        if not polygons:
            continue
        labels = {str(p.get("label", "")) for p in polygons}
        names |= labels
        if len(labels) > 1 and not overlap:
            overlap = _labels_overlap(polygons, labels)
    return sorted(names), overlap


def _labels_overlap(polygons: list[dict[str, Any]], labels: set[str]) -> bool:
    points = np.concatenate([np.asarray(p["points"], float).reshape(-1, 2) for p in polygons])
    lo, hi = points.min(axis=0), points.max(axis=0)
    scale = min(1.0, 256.0 / max(float((hi - lo).max()), 1.0))
    shape = (int(np.ceil((hi[1] - lo[1]) * scale)) + 2, int(np.ceil((hi[0] - lo[0]) * scale)) + 2)
    index = {name: i + 1 for i, name in enumerate(sorted(labels))}
    channels = rasterize_polygons(polygons, shape, index, multilabel=True, scale=scale, offset=tuple(-lo * scale + 1))
    return bool((channels.sum(axis=0) > 1).any())


def label_map_values(manifest: Manifest, column: str, *, workers: int = 2) -> list[int]:
    """Union of the values of every label-map file of ``column`` (0 always included)."""
    paths = [manifest.resolve(p) for p in manifest.frame[column].dropna() if str(p)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = pool.map(lambda p: mask_values(read_label_map(p), path=p), paths)
        values = sorted({0, *(v for vs in found for v in vs)})
    return values


def _parse(value: object, manifest: Manifest, row: int, column: str) -> list[dict[str, Any]] | None:
    """Parsed polygon list, ``None`` when the row is not annotated (NA)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) or value == "":
        return None
    image = manifest.frame["image"].iat[row]
    return json_list(value, image=f"{manifest.name}: row {row} ({image})", column=column)


def is_missing(manifest: Manifest, spec: TargetSpec) -> np.ndarray:
    """Boolean per row: no usable target (polygons: NA; label maps: never, NA is all background)."""
    if spec.column not in manifest.frame:
        return np.ones(len(manifest), dtype=bool)
    if spec.source == MASK:
        return np.zeros(len(manifest), dtype=bool)
    values = manifest.frame[spec.column]
    return (values.isna() | (values.astype("string").str.strip() == "")).to_numpy(bool)


# -- one row's target --------------------------------------------------------------------------------------------
def _where(manifest: Manifest, row: int) -> str:
    return f"{manifest.name} row {row} ({manifest.frame['image'].iat[row]})"


def original_target(manifest: Manifest, row: int, spec: TargetSpec, original_hw: tuple[int, int]) -> np.ndarray | None:
    """Truth of one row in the original pixel grid: ``(K, H, W)`` bool (K foreground classes), or ``None``."""
    if spec.column not in manifest.frame:
        return None
    value = manifest.frame[spec.column].iat[row]
    k = len(spec.foreground)
    if spec.source == POLYGONS:
        polygons = _parse(value, manifest, row, spec.column)
        if polygons is None:
            return None
        out = rasterize_polygons(
            polygons, original_hw, spec.class_index, multilabel=spec.multilabel, where=_where(manifest, row)
        )
        return out if spec.multilabel else _channels(out, k)
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) or value == "":
        return np.zeros((k, *original_hw), dtype=bool)
    path = manifest.resolve(str(value))
    labels = encode_label_map(read_label_map(path, expected_hw=original_hw), spec.mask_values or (0,), path=path)
    if labels.ndim != 2:
        raise ConfigError(f"{path}: a {labels.ndim}-D label volume; the segment task takes 2D masks of 2D images.")
    return _channels(labels, k)


def input_target(manifest: Manifest, row: int, spec: TargetSpec, geometry: Letterbox, size: int) -> np.ndarray | None:
    """Truth of one row in the letterboxed input: ``(S, S)`` uint8 class map, or ``(K, S, S)`` bool (multi-label)."""
    if spec.column not in manifest.frame:
        return None
    value = manifest.frame[spec.column].iat[row]
    if spec.source == POLYGONS:
        polygons = _parse(value, manifest, row, spec.column)
        if polygons is None:
            return None
        return letterbox_polygons(
            polygons, geometry, size, spec.class_index, multilabel=spec.multilabel, where=_where(manifest, row)
        )
    truth = original_target(manifest, row, spec, geometry.original_hw)
    if truth is None:
        return None
    if not truth.any():
        return np.zeros((size, size), dtype=np.uint8)
    labels = np.zeros(truth.shape[1:], dtype=np.uint8)
    for c in range(truth.shape[0]):
        labels[truth[c]] = c + 1
    return label_map_to_input(labels, geometry, size, n_classes=len(spec.class_names))


def _channels(labels: np.ndarray, k: int) -> np.ndarray:
    return np.stack([labels == c for c in range(1, k + 1)]) if k else np.zeros((0, *labels.shape), dtype=bool)


# -- the dataset -------------------------------------------------------------------------------------------------
class SegmentationDataset(Dataset):
    """Items ``{"image": (1, s, s) float32, "mask": ..., "has_mask": bool, "index": int}``.

    ``mask`` is ``(1, s, s)`` int64 class indices, or ``(K, s, s)`` float32 for multi-label targets. Training
    sets (every row in the ``train`` split) with a ``patch_size`` yield random ``patch_size`` crops, half of them
    centred on a foreground pixel when the image has one (nnU-Net-style foreground oversampling); every other
    set yields whole letterboxed images, which validation and prediction slide a window over.

    Args:
        images: ``(N, S, S)`` unit-range stack (``DecodedImages.stack``).
        geometry: Letterbox of each image (to map predictions back to the original pixels).
        targets: ``(N, S, S)`` uint8 or ``(N, K, S, S)`` bool input-space targets.
        has_target: ``(N,)`` bool: rows whose target is known.
        rows: Manifest row of each image (reported as ``index``).
        prep: Normalisation constants.
        augment: Joint image+mask augmentation (torchvision v2), training only.
        patch_size: Crop side for training, or ``None``.
        foreground_fraction: Share of crops centred on foreground.
        training: Whether to crop (see above).
    """

    def __init__(
        self,
        images: np.ndarray,
        geometry: list[Letterbox],
        targets: np.ndarray,
        has_target: np.ndarray,
        rows: np.ndarray,
        prep: Preprocessing,
        *,
        augment: Callable[..., Any] | None = None,
        patch_size: int | None = None,
        foreground_fraction: float = 0.5,
        training: bool = False,
    ) -> None:
        self.images = torch.from_numpy(images)
        self.geometry = geometry
        self.targets = torch.from_numpy(targets)
        self.has_target = np.asarray(has_target, dtype=bool)
        self.indices = np.asarray(rows)
        self.prep = prep
        self.augment = augment
        self.patch_size = patch_size if training else None
        self.foreground_fraction = foreground_fraction

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        image = self.images[i].float()
        image = image[None] if image.ndim == 2 else image  # grey (S, S) or colour (3, S, S)
        mask = self.targets[i]
        mask = mask[None] if mask.ndim == 2 else mask
        if self.patch_size is not None:
            image, mask = self._crop(image, mask)
        if self.augment is not None:
            image, mask = self.augment(image, tv_tensors.Mask(mask.to(torch.uint8)))
            image = image.clamp(0, 1)
        multilabel = self.targets.ndim == 4
        return {
            "image": normalize(torch.as_tensor(image), self.prep),
            "mask": torch.as_tensor(mask).float() if multilabel else torch.as_tensor(mask).long(),
            "has_mask": torch.tensor(bool(self.has_target[i])),
            "index": torch.tensor(int(self.indices[i])),
        }

    def _crop(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = int(self.patch_size or 0)
        size = image.shape[-1]
        if p >= size:
            return image, mask
        foreground = mask.any(dim=0).nonzero()
        if len(foreground) and torch.rand(()) < self.foreground_fraction:
            cy, cx = foreground[torch.randint(len(foreground), ())].tolist()
            top = int(np.clip(cy - p // 2 + torch.randint(-p // 4, p // 4 + 1, ()).item(), 0, size - p))
            left = int(np.clip(cx - p // 2 + torch.randint(-p // 4, p // 4 + 1, ()).item(), 0, size - p))
        else:
            top, left = (int(v) for v in torch.randint(0, size - p + 1, (2,)))
        return image[..., top : top + p, left : left + p], mask[..., top : top + p, left : left + p]
