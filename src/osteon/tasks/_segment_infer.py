"""Segmentation inference: sliding window over the letterboxed input, back to original pixels, measurements.

Pixel conventions: masks are in the ORIGINAL image's pixel grid (rows down, columns right); bounding boxes are
``[x1, y1, x2, y2]`` in pixels, inclusive-exclusive (the Manifest's ``boxes`` convention).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from osteon.data.masks import probabilities_to_original
from osteon.data.transforms import Letterbox, Preprocessing

#: Colours of the saved palette PNGs (class k gets _PALETTE[k]); the stored values are the class indices.
_PALETTE = [(0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180)]


@dataclass(frozen=True)
class MaskPrediction:
    """Segmentation of one image, in its original pixel grid.

    Attributes:
        mask: ``(H, W)`` uint8 class indices (0 = background), or ``(K, H, W)`` bool for multi-label models.
        probabilities: ``(C, H, W)`` float32: softmax over classes incl. background, or one sigmoid per foreground
            class (binary and multi-label models).
        class_names: ``("background", *foreground)``.
        spacing: ``(row, col)`` mm per pixel, or ``None`` (areas and distances are then in pixels).
        measurements: Per foreground class: ``area_px``, ``area_mm2`` (nan without spacing), ``components``,
            ``bbox`` ``[x1, y1, x2, y2]`` or ``None`` when the class is absent.
    """

    mask: np.ndarray
    probabilities: np.ndarray
    class_names: tuple[str, ...]
    spacing: tuple[float, float] | None = None
    measurements: dict[str, dict[str, Any]] = field(default_factory=dict)

    def channels(self) -> np.ndarray:
        """``(K, H, W)`` bool, one channel per foreground class."""
        if self.mask.ndim == 3:
            return self.mask
        return np.stack([self.mask == k for k in range(1, len(self.class_names))])


def window_logits(
    model: nn.Module, images: torch.Tensor, *, roi: int, overlap: float, batch_size: int, pad_value: float
) -> torch.Tensor:
    """Logits ``(B, C, S, S)`` of ``(B, 1, S, S)`` inputs, by MONAI sliding windows of ``roi`` with Gaussian blending.

    A window as large as the input is a single forward pass. Inputs smaller than ``roi`` are padded with
    ``pad_value`` (the normalised letterbox background).
    """
    if images.shape[-2:] == (roi, roi):
        return model(images)
    from monai.inferers import sliding_window_inference

    return sliding_window_inference(  # type: ignore[return-value]
        images,
        roi_size=(roi, roi),
        sw_batch_size=batch_size,
        predictor=model,
        overlap=overlap,
        mode="gaussian",
        cval=pad_value,
    )


def activate(logits: torch.Tensor, *, sigmoid: bool) -> torch.Tensor:
    """Probabilities: sigmoid per channel (binary/multi-label) or softmax over channels."""
    logits = logits.float()
    return torch.sigmoid(logits) if sigmoid else torch.softmax(logits, dim=1)


def decide(probabilities: torch.Tensor, *, sigmoid: bool, multilabel: bool) -> np.ndarray:
    """Masks from ``(C, H, W)`` probabilities: ``p > 0.5`` per sigmoid channel, else the argmax class."""
    if sigmoid:
        above = (probabilities > 0.5).cpu().numpy()
        if multilabel:
            return above
        return above[0].astype(np.uint8)
    return probabilities.argmax(dim=0).cpu().numpy().astype(np.uint8)


def to_original(
    probabilities: torch.Tensor, geometry: Letterbox, *, sigmoid: bool, multilabel: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``(C, S, S)`` input-space probabilities → ``(mask, probabilities)`` in the original pixel grid."""
    original = probabilities_to_original(probabilities, geometry)
    return decide(original, sigmoid=sigmoid, multilabel=multilabel), original.cpu().numpy().astype(np.float32)


def measure(channels: np.ndarray, names: list[str], spacing: tuple[float, float] | None) -> dict[str, dict[str, Any]]:
    """Area, connected components (8-connected) and bounding box of each foreground channel ``(K, H, W)``."""
    from scipy import ndimage

    pixel_mm2 = spacing[0] * spacing[1] if spacing else float("nan")
    out: dict[str, dict[str, Any]] = {}
    for name, channel in zip(names, channels, strict=True):
        area = int(channel.sum())
        components = int(ndimage.label(channel, structure=np.ones((3, 3), dtype=int))[1]) if area else 0
        bbox = None
        if area:
            rows = np.flatnonzero(channel.any(axis=1))
            cols = np.flatnonzero(channel.any(axis=0))
            bbox = [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]
        out[name] = {"area_px": area, "area_mm2": area * pixel_mm2, "components": components, "bbox": bbox}
    return out


def measurement_columns(measurements: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Flat table cells ``area_px_<class>``, ``area_mm2_<class>``, ``components_<class>``, ``bbox_<class>`` (JSON)."""
    row: dict[str, Any] = {}
    for name, values in measurements.items():
        key = column_key(name)
        row[f"area_px_{key}"] = values["area_px"]
        row[f"area_mm2_{key}"] = values["area_mm2"]
        row[f"components_{key}"] = values["components"]
        row[f"bbox_{key}"] = json.dumps(values["bbox"]) if values["bbox"] is not None else ""
    return row


def column_key(name: str) -> str:
    """A class name usable in a column name (spaces and separators → ``_``)."""
    return "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in str(name))


def save_label_png(path: Path, mask: np.ndarray) -> Path:
    """Write a class-index map as a palette PNG: values are the class indices, colours make it viewable."""
    from PIL import Image as PILImage

    path.parent.mkdir(parents=True, exist_ok=True)
    pil = PILImage.fromarray(mask.astype(np.uint8), mode="P")
    palette = [c for colour in _PALETTE for c in colour]
    palette += [255, 255, 255] * (256 - len(_PALETTE))
    pil.putpalette(palette)
    pil.save(path)
    return path


def save_mask(path_stem: Path, mask: np.ndarray) -> str:
    """Save a prediction: one palette PNG for a class map, ``<stem>_<k>.png`` per channel for multi-label."""
    if mask.ndim == 2:
        return str(save_label_png(path_stem.with_suffix(".png"), mask))
    paths = [str(save_label_png(path_stem.parent / f"{path_stem.name}_{k + 1}.png", m)) for k, m in enumerate(mask)]
    return "|".join(paths)


def pixel_spacing(manifest_frame: Any, row: int, path: Path) -> tuple[float, float] | None:
    """``(row, col)`` mm of an image: the Manifest's ``spacing_row``/``spacing_col``, else a DICOM header."""
    if {"spacing_row", "spacing_col"} <= set(manifest_frame.columns):
        values = manifest_frame[["spacing_row", "spacing_col"]].iloc[row]
        try:
            sr, sc = float(values.iloc[0]), float(values.iloc[1])
        except (TypeError, ValueError):
            sr = sc = float("nan")
        if np.isfinite(sr) and np.isfinite(sc) and sr > 0 and sc > 0:
            return sr, sc
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return None
    if head[128:132] != b"DICM":
        return None
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    if spacing is not None and len(spacing) == 2 and float(spacing[0]) > 0 and float(spacing[1]) > 0:
        return float(spacing[0]), float(spacing[1])
    return None


def pad_value(prep: Preprocessing) -> float:
    """The normalised value of the letterbox padding (unit 0)."""
    return (0.0 - prep.mean) / prep.std
