"""The box scale chosen on validation: predicted boxes scaled about their centres by one factor.

A detector trained with an IoU loss hedges: where it is unsure of an object's extent it predicts a box larger
than the true one (a larger box loses less IoU when its centre is off). On FracAtlas the default detector's boxes
were a median 1.1–1.4× the true size around the fractures it found, and about half of those missed IoU 0.5 by
their size alone (docs/decisions.md). Like the operating point, the correction is chosen on the validation
predictions: the factor in ``SCALES`` with the highest validation mAP@0.5, averaged with its two neighbours on the
grid (one factor is chosen from a few dozen true boxes, so a lone spike should not win), mAP@0.5:0.95 breaking
ties (where every factor of a range clears IoU 0.5, the one that fits the boxes best), and 1 when none beats 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from osteon.data.boxes import ImageBoxes
from osteon.metrics.detection import coco_evaluate

SCALES = tuple(round(0.7 + 0.05 * k, 2) for k in range(13))  # 0.70, 0.75, ..., 1.30


def scale_boxes(boxes: np.ndarray, factor: float) -> np.ndarray:
    """``(N, 4)`` xyxy boxes scaled about their centres by ``factor`` (width and height alike)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if factor == 1.0 or not len(boxes):
        return boxes
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * (factor / 2)
    return np.concatenate([centre - half, centre + half], axis=1)


def choose_box_scale(
    truth: Sequence[ImageBoxes], predictions: Sequence[ImageBoxes], *, n_classes: int
) -> dict[str, Any] | None:
    """The scale factor chosen on validation boxes (see the module's docstring), or ``None`` without true boxes.

    Returns ``{"box_scale", "chosen_on", "method", "map50_by_scale"}`` (the last: validation mAP@0.5 per factor).
    """
    if not sum(len(t.boxes) for t in truth):
        return None
    map50, map50_95 = [], []
    for factor in SCALES:
        result = coco_evaluate(truth, [_scaled(p, factor) for p in predictions], n_classes=n_classes)
        map50.append(result.map50 if np.isfinite(result.map50) else 0.0)
        map50_95.append(result.map50_95 if np.isfinite(result.map50_95) else 0.0)
    smooth50, smooth50_95 = _smoothed(map50), _smoothed(map50_95)
    unit = SCALES.index(1.0)
    best = max(range(len(SCALES)), key=lambda i: (smooth50[i], smooth50_95[i], -abs(SCALES[i] - 1.0)))
    chosen = SCALES[best] if (smooth50[best], smooth50_95[best]) > (smooth50[unit], smooth50_95[unit]) else 1.0
    return {
        "box_scale": chosen,
        "chosen_on": "val",
        "method": "max validation mAP@0.5 (ties: mAP@0.5:0.95), each the mean with the two neighbouring factors",
        "map50_by_scale": {f"{s:.2f}": round(float(v), 4) for s, v in zip(SCALES, map50, strict=True)},
    }


def _smoothed(values: list[float]) -> np.ndarray:
    """Each value averaged with its neighbours on the grid (one at the ends)."""
    v = np.asarray(values, dtype=float)
    return np.array([v[max(i - 1, 0) : i + 2].mean() for i in range(len(v))])


def _scaled(boxes: ImageBoxes, factor: float) -> ImageBoxes:
    return replace(boxes, boxes=scale_boxes(boxes.boxes, factor))
