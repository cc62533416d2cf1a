"""The detection dataset: letterboxed images with their boxes in input pixels, augmented jointly."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from osteon.data.boxes import ImageBoxes, to_input_space
from osteon.data.transforms import Letterbox, Preprocessing, normalize

MIN_SIDE_AFTER_AUGMENT = 1.0  # boxes pushed (almost) out of the canvas by an augmentation are dropped
CROP_ON_FINDING = 0.5  # share of training crops that contain a finding (the rest: anywhere in the image)
MIN_VISIBLE = 0.4  # a box cut by a crop is kept when this share of its area is inside


class DetectionDataset(Dataset):
    """Items ``{"image": (1, S, S) float32 normalised, "boxes": (K, 4) float32 input-pixel xyxy,
    "labels": (K,) int64 0-based, "index": int}``.

    Args:
        images: ``(N, S, S)`` unit-range stack (``DecodedImages.stack``).
        targets: Per image, boxes in *original* pixels (``ImageBoxes``); mapped to the input with ``geometry``.
        geometry: Per image, where the original sits in the square input.
        prep: Normalisation constants.
        augment: torchvision v2 transform called as ``augment(image, BoundingBoxes)`` (geometry moves
            the boxes with the image; intensity steps leave them alone), or None.
        indices: Manifest row of each item (reported back as ``"index"``).
        crop: Train on random ``crop × crop`` windows (a finding inside ``CROP_ON_FINDING`` of the time;
            boxes cut by the window are clipped, or dropped when less than ``MIN_VISIBLE`` of them is left).
    """

    def __init__(
        self,
        images: np.ndarray,
        targets: Sequence[ImageBoxes],
        geometry: Sequence[Letterbox],
        prep: Preprocessing,
        *,
        augment: Callable[..., Any] | None = None,
        indices: np.ndarray | None = None,
        crop: int | None = None,
    ) -> None:
        if not len(images) == len(targets) == len(geometry):
            raise ValueError(f"{len(images)} images, {len(targets)} box sets and {len(geometry)} geometries.")
        self.images = torch.from_numpy(images)
        self.boxes = [
            torch.from_numpy(to_input_space(t.boxes, g).astype(np.float32))
            for t, g in zip(targets, geometry, strict=True)
        ]
        self.labels = [torch.from_numpy(np.asarray(t.labels, dtype=np.int64)) for t in targets]
        self.geometry = list(geometry)
        self.prep = prep
        self.augment = augment
        self.indices = indices if indices is not None else np.arange(len(images))
        self.crop = crop if crop and crop < min(images.shape[-2:]) else None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        image = self.images[i].float()[None]
        boxes, labels = self.boxes[i], self.labels[i]
        if self.crop is not None:
            image, boxes, labels = random_crop(image, boxes, labels, self.crop)
        if self.augment is not None:
            size = tuple(image.shape[-2:])
            image, moved = self.augment(image, tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=size))
            boxes = moved.as_subclass(torch.Tensor).clone()
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, size[1])
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, size[0])
            keep = ((boxes[:, 2] - boxes[:, 0]) >= MIN_SIDE_AFTER_AUGMENT) & (
                (boxes[:, 3] - boxes[:, 1]) >= MIN_SIDE_AFTER_AUGMENT
            )
            boxes, labels = boxes[keep], labels[keep]
            image = image.clamp(0, 1)
        return {
            "image": normalize(image, self.prep),
            "boxes": boxes,
            "labels": labels,
            "index": int(self.indices[i]),
            "position": i,
        }


def collate_detection(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch: ``{"image": (B, 1, S, S), "targets": [{"boxes", "labels"}], "index": (B,), "position": (B,)}``."""
    return {
        "image": torch.stack([it["image"] for it in items]),
        "targets": [{"boxes": it["boxes"], "labels": it["labels"]} for it in items],
        "index": torch.tensor([it["index"] for it in items]),
        "position": torch.tensor([it["position"] for it in items]),
    }


def random_crop(
    image: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A ``size × size`` window of ``image`` (1, H, W) and its boxes (see :class:`DetectionDataset`)."""
    h, w = image.shape[-2:]
    if len(boxes) and float(torch.rand(())) < CROP_ON_FINDING:
        box = boxes[int(torch.randint(len(boxes), ()))]
        cx, cy = float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2
        x0 = cx - size * (0.1 + 0.8 * float(torch.rand(())))  # the centre lands in the inner 80% of the window
        y0 = cy - size * (0.1 + 0.8 * float(torch.rand(())))
    else:
        x0, y0 = float(torch.rand(())) * (w - size), float(torch.rand(())) * (h - size)
    x0, y0 = int(min(max(x0, 0), w - size)), int(min(max(y0, 0), h - size))
    image = image[..., y0 : y0 + size, x0 : x0 + size]
    if not len(boxes):
        return image, boxes, labels
    moved = boxes - torch.tensor([x0, y0, x0, y0], dtype=boxes.dtype)
    clipped = moved.clamp(0, size)
    area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
    inside = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    keep = inside >= MIN_VISIBLE * area.clamp(min=1e-6)
    return image, clipped[keep], labels[keep]
