"""The box scale chosen on validation: predicted boxes scaled about their centres by one factor.

A detector trained with an IoU loss hedges: where it is unsure of an object's extent it predicts a box larger
than the true one (a larger box loses less IoU when its centre is off). On FracAtlas the default detector's boxes
were a median 1.1–1.2× the side of the fractures they found, on validation and test alike, and about half of the
found fractures missed IoU 0.5 (docs/decisions.md). Like the operating point, the correction is chosen on the
validation predictions, as an estimate of that bias rather than a search for the best score: each true box is
paired with the highest-scoring predicted box whose centre lies inside it (the detection the evaluation would
match first), the factor is the inverse of the median of their size ratios (``sqrt`` of the area ratio),
rounded to ``STEP`` and kept in ``[LOWEST, HIGHEST]``, and 1 with fewer than ``MIN_PAIRS`` pairs. A median of a few
dozen ratios moves little between runs; the validation mAP@0.5 of a factor, decided by a handful of boxes near
IoU 0.5, jumps by 2× between neighbouring factors (it is recorded per factor, for the report, not chosen on).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from osteon.data.boxes import ImageBoxes
from osteon.metrics.detection import coco_evaluate

LOWEST, HIGHEST, STEP = 0.7, 1.3, 0.05
MIN_PAIRS = 10
SCALES = tuple(round(LOWEST + STEP * k, 2) for k in range(13))  # 0.70, 0.75, ..., 1.30: the recorded curve


def scale_boxes(boxes: np.ndarray, factor: float) -> np.ndarray:
    """``(N, 4)`` xyxy boxes scaled about their centres by ``factor`` (width and height alike)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if factor == 1.0 or not len(boxes):
        return boxes
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * (factor / 2)
    return np.concatenate([centre - half, centre + half], axis=1)


def size_ratios(truth: Sequence[ImageBoxes], predictions: Sequence[ImageBoxes]) -> np.ndarray:
    """Per true box, ``sqrt(predicted area / true area)`` of the highest-scoring predicted box of its class whose
    centre lies inside it (true boxes without one are left out)."""
    ratios = []
    for true, pred in zip(truth, predictions, strict=True):
        order = np.argsort(-pred.scores, kind="stable") if pred.scores is not None else np.arange(len(pred))
        boxes, labels = pred.boxes[order].reshape(-1, 4), pred.labels[order]
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        for box, label in zip(true.boxes.reshape(-1, 4), true.labels, strict=True):
            inside = (labels == label) & (centres >= box[:2]).all(axis=1) & (centres <= box[2:]).all(axis=1)
            if inside.any():
                p = boxes[np.argmax(inside)]
                true_area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)
                ratios.append(np.sqrt(max((p[2] - p[0]) * (p[3] - p[1]), 0.0) / true_area))
    return np.asarray(ratios, dtype=float)


def choose_box_scale(
    truth: Sequence[ImageBoxes], predictions: Sequence[ImageBoxes], *, n_classes: int
) -> dict[str, Any] | None:
    """The scale factor chosen on validation boxes (see the module's docstring), or ``None`` without true boxes.

    Returns ``{"box_scale", "chosen_on", "method", "n_pairs", "median_size_ratio", "map50_by_scale"}``.
    """
    if not sum(len(t.boxes) for t in truth):
        return None
    ratios = size_ratios(truth, predictions)
    median = float(np.median(ratios)) if len(ratios) else float("nan")
    chosen = 1.0
    if len(ratios) >= MIN_PAIRS and median > 0:
        chosen = round(float(np.clip(round(1 / median / STEP) * STEP, LOWEST, HIGHEST)), 2)
    curve = {}
    for factor in SCALES:
        value = coco_evaluate(truth, [_scaled(p, factor) for p in predictions], n_classes=n_classes).map50
        curve[f"{factor:.2f}"] = round(float(value), 4) if np.isfinite(value) else None
    return {
        "box_scale": chosen,
        "chosen_on": "val",
        "method": f"1 / median size ratio of the top-scoring box centred in each true box (>= {MIN_PAIRS} pairs)",
        "n_pairs": len(ratios),
        "median_size_ratio": round(median, 3) if np.isfinite(median) else None,
        "map50_by_scale": curve,
    }


def _scaled(boxes: ImageBoxes, factor: float) -> ImageBoxes:
    return replace(boxes, boxes=scale_boxes(boxes.boxes, factor))
