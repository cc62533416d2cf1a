"""Typed predictions, images and CAMs as JSON for the REST API (no task names: dispatch on the prediction type).

Geometry is in the ORIGINAL image's pixels (x right, y down), like :mod:`osteon.tasks.predictions`. Masks are
PNG class maps (pixel value = class index, base64) plus COCO run-length encoding per foreground class.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from osteon.tasks.predictions import (
    BoxPrediction,
    ClassPrediction,
    GradePrediction,
    MaskPrediction,
    Prediction,
    ValuePrediction,
)

#: Longest side of the display image sent back to the web page (the predictions stay in original pixels).
DISPLAY_SIDE = 1024


def png_base64(array: np.ndarray) -> str:
    """A 2D uint8 (grey/class map) or ``(H, W, 3|4)`` uint8 array as a base64 PNG."""
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", optimize=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def prediction_json(prediction: Prediction, *, operating_point: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON of one typed prediction: ``kind`` + its fields (probabilities by class name)."""
    if isinstance(prediction, GradePrediction):
        return {
            "kind": "grade",
            "grade": prediction.grade,
            "expected_grade": float(prediction.expected_grade),
            "probabilities": _by_class(prediction.probabilities, prediction.class_names),
        }
    if isinstance(prediction, ClassPrediction):
        out: dict[str, Any] = {
            "kind": "class",
            "label": prediction.label,
            "multilabel": prediction.multilabel,
            "probabilities": _by_class(prediction.probabilities, prediction.class_names),
        }
        if operating_point and "threshold" in operating_point:
            out["operating_point"] = {k: operating_point[k] for k in ("threshold", "method") if k in operating_point}
        return out
    if isinstance(prediction, ValuePrediction):
        return {"kind": "value", "value": float(prediction.value)}
    if isinstance(prediction, BoxPrediction):
        return {
            "kind": "boxes",
            "class_names": list(prediction.class_names),
            "boxes": [
                {"xyxy": [float(v) for v in box], "score": float(score), "label": str(label)}
                for box, score, label in zip(prediction.boxes_xyxy, prediction.scores, prediction.labels, strict=True)
            ],
        }
    if isinstance(prediction, MaskPrediction):
        return mask_json(prediction)
    raise TypeError(f"no JSON form for {type(prediction).__name__}")


def mask_json(prediction: MaskPrediction) -> dict[str, Any]:
    """Class map as PNG (value = class index; multi-label: one PNG per class, 0/1), RLE and measurements."""
    channels = prediction.channels()
    names = list(prediction.class_names)
    if prediction.mask.ndim == 2:
        pngs = {"class_map": png_base64(prediction.mask.astype(np.uint8))}
    else:
        pngs = {name: png_base64(ch.astype(np.uint8)) for name, ch in zip(names[1:], channels, strict=True)}
    height, width = channels.shape[1:]
    return {
        "kind": "mask",
        "class_names": names,
        "multilabel": prediction.mask.ndim == 3,
        "height": int(height),
        "width": int(width),
        "png": pngs,
        "rle": {name: coco_rle(ch) for name, ch in zip(names[1:], channels, strict=True)},
        "spacing_mm": list(prediction.spacing) if prediction.spacing else None,
        "measurements": _plain(prediction.measurements),
        "present": prediction.summary(),
    }


def coco_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO run-length encoding (column-major, ``pycocotools.mask.decode`` reads it back)."""
    from pycocotools import mask as coco

    rle = coco.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def display_json(
    array: np.ndarray, *, window: tuple[float, float] | None, original_hw: tuple[int, int] | None = None
) -> dict[str, Any]:
    """The image for the page: ``uint16`` samples spanning ``[low, high]`` (original units), at most
    :data:`DISPLAY_SIDE` pixels on a side, and the file's window (centre, width) or the full range.

    The page applies window/level on these samples itself, so DICOM contrast can be adjusted without a request.
    ``original_hw`` is the file's own size when ``array`` was decoded smaller (predictions are in those pixels).
    """
    grey = array.astype(np.float32)
    if grey.ndim == 3:  # RGB → luminance, as the model sees it
        grey = grey[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    height, width = grey.shape
    step = max(1, int(np.ceil(max(height, width) / DISPLAY_SIDE)))
    small = _shrink(grey, step)
    finite = small[np.isfinite(small)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if array.dtype == np.uint8:
        low, high = 0.0, 255.0
    span = high - low if high > low else 1.0
    samples = np.clip(np.round((np.nan_to_num(small, nan=low) - low) / span * 65535), 0, 65535).astype("<u2")
    center, width_w = window if window else (low + span / 2, span)
    return {
        "width": int(small.shape[1]),
        "height": int(small.shape[0]),
        "original_width": int(original_hw[1] if original_hw else width),
        "original_height": int(original_hw[0] if original_hw else height),
        "low": low,
        "high": high,
        "window": {"center": float(center), "width": float(width_w)},
        "samples_uint16_le": base64.b64encode(samples.tobytes()).decode("ascii"),
    }


def heatmap_json(cam: np.ndarray, *, target: str, score: float | None) -> dict[str, Any]:
    """A CAM ``(H, W)`` in [0, 1] as an RGBA PNG (colour map, alpha rising with the value) at display size."""
    from osteon.explain.overlay import colorize

    step = max(1, int(np.ceil(max(cam.shape) / DISPLAY_SIDE)))
    small = np.clip(_shrink(cam.astype(np.float32), step), 0, 1)
    rgb = colorize(small)
    rgb = (rgb * 255).astype(np.uint8) if rgb.dtype != np.uint8 else rgb
    alpha = (np.clip(small, 0, 1) * 200).astype(np.uint8)
    return {"target": target, "score": score, "png": png_base64(np.dstack([rgb[..., :3], alpha]))}


def _shrink(array: np.ndarray, step: int) -> np.ndarray:
    """Block-mean downsampling by an integer ``step`` (edges cropped to a multiple)."""
    if step == 1:
        return array
    h, w = (array.shape[0] // step) * step, (array.shape[1] // step) * step
    return array[:h, :w].reshape(h // step, step, w // step, step).mean(axis=(1, 3))


def _by_class(probabilities: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    return {str(n): float(p) for n, p in zip(names, np.asarray(probabilities, dtype=float), strict=True)}


def _plain(value: Any) -> Any:
    """numpy scalars/arrays → Python; NaN/inf → None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    return value
