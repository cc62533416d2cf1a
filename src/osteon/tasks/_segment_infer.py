"""Segmentation inference: sliding window over the letterboxed input, back to original pixels, measurements.

Pixel conventions: masks are in the ORIGINAL image's pixel grid (rows down, columns right); bounding boxes are
``[x1, y1, x2, y2]`` in pixels, inclusive-exclusive (the Manifest's ``boxes`` convention).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from osteon.data.masks import probabilities_to_original
from osteon.data.transforms import Letterbox, Preprocessing


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
