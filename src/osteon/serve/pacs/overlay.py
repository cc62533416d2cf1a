"""The prediction drawn on the image, as RGB pixels for the secondary-capture overlay."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw

#: Mask tint per foreground class (RGB), cycled.
COLOURS = [(255, 64, 64), (64, 200, 255), (255, 200, 0), (120, 255, 120)]


def draw_prediction(gray: np.ndarray, prediction: Any) -> np.ndarray:
    """``(H, W, 3)`` uint8: ``gray`` (``(H, W)`` floats in [0, 1]) with masks tinted, boxes outlined, a caption.

    Geometry comes from the typed prediction, in the image's own pixels (see :mod:`osteon.tasks.predictions`).
    """
    from osteon.explain.overlay import draw_box
    from osteon.tasks.predictions import BoxPrediction, MaskPrediction

    g = np.clip(np.nan_to_num(np.asarray(gray, dtype=np.float32)), 0, 1)
    rgb = np.repeat((g * 255).astype(np.uint8)[..., None], 3, axis=-1)
    if isinstance(prediction, MaskPrediction):
        out = rgb.astype(np.float32)
        for k, channel in enumerate(prediction.channels()):
            if channel.shape != g.shape:
                continue
            colour = np.array(COLOURS[k % len(COLOURS)], dtype=np.float32)
            out[channel] = 0.55 * out[channel] + 0.45 * colour
        rgb = out.astype(np.uint8)
    if isinstance(prediction, BoxPrediction):
        for box, label in zip(prediction.boxes_xyxy, prediction.labels, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            rgb = draw_box(rgb, (x1, y1, x2, y2), color=COLOURS[0])
            pil = PILImage.fromarray(rgb)
            ImageDraw.Draw(pil).text((float(box[0]), max(0.0, float(box[1]) - 12)), str(label), fill=COLOURS[0])
            rgb = np.asarray(pil)
    pil = PILImage.fromarray(np.ascontiguousarray(rgb))
    ImageDraw.Draw(pil).text((4, 4), f"Osteon: {prediction.summary()}", fill=(255, 255, 0))
    return np.asarray(pil).copy()
