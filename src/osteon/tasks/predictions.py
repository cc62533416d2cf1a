"""The typed predictions every task returns, in one module (DESIGN.md §2).

One dataclass per kind of output; geometry is always in the ORIGINAL image's pixels (x right, y down)
so that callers (explain, report, serve, pipelines) never need to know how the model saw the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ClassPrediction:
    """Classification of one image: probabilities over ``class_names`` (multilabel: independent)."""

    probabilities: np.ndarray
    class_names: tuple[str, ...]
    label: str
    multilabel: bool = False

    def summary(self) -> str:
        """One line for captions and logs."""
        return self.label


@dataclass(frozen=True)
class GradePrediction:
    """Ordinal grade of one image: the most probable grade, the probabilities and the expected grade."""

    probabilities: np.ndarray
    class_names: tuple[str, ...]
    grade: str
    expected_grade: float

    def summary(self) -> str:
        return self.grade


@dataclass(frozen=True)
class ValuePrediction:
    """A predicted number (bone age, angle, joint-space width)."""

    value: float

    def summary(self) -> str:
        return f"{self.value:.4g}"


@dataclass(frozen=True)
class BoxPrediction:
    """Detections in one image.

    Attributes:
        boxes_xyxy: ``(K, 4)`` float pixels of the original image, x right / y down.
        scores: ``(K,)`` confidences, descending.
        labels: ``(K,)`` class names.
        class_names: All classes of the model.
    """

    boxes_xyxy: np.ndarray
    scores: np.ndarray
    labels: tuple[str, ...]
    class_names: tuple[str, ...]

    def summary(self) -> str:
        best = f", top score {self.scores[0]:.2f}" if len(self.scores) else ""
        return f"{len(self.scores)} box(es){best}"


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

    def summary(self) -> str:
        present = [n for n, c in zip(self.class_names[1:], self.channels(), strict=True) if c.any()]
        return "|".join(present) if present else self.class_names[0]

    def channels(self) -> np.ndarray:
        """``(K, H, W)`` bool, one channel per foreground class."""
        if self.mask.ndim == 3:
            return self.mask
        return np.stack([self.mask == k for k in range(1, len(self.class_names))])


@dataclass(frozen=True)
class PointPrediction:
    """Landmarks of one image, in its original pixels (x right, y down; pixel ``(0, 0)`` spans ``[0, 1)²``).

    Attributes:
        points: ``(K, 2)`` float ``(x, y)`` per landmark, in the order of ``names``.
        confidence: ``(K,)`` in [0, 1]: the share of the heat map's mass at the peak.
        names: Landmark names.
        heatmaps: ``(K, S, S)`` float32 spatial probabilities on the model input (for overlays), or ``None``.
        spacing: ``(row, col)`` mm per pixel, or ``None``.
        measurements: Angles/distances computed from the points (:mod:`osteon.metrics.measurements`).
    """

    points: np.ndarray
    confidence: np.ndarray
    names: tuple[str, ...]
    heatmaps: np.ndarray | None = None
    spacing: tuple[float, float] | None = None
    measurements: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        shown = ", ".join(f"{k} {v:.1f}°" for k, v in self.measurements.items() if np.isfinite(v))
        return f"{len(self.names)} landmark(s)" + (f"; {shown}" if shown else "")

    def as_dict(self) -> dict[str, tuple[float, float]]:
        """``{name: (x, y)}``."""
        return {n: (float(x), float(y)) for n, (x, y) in zip(self.names, self.points, strict=True)}


Prediction = ClassPrediction | GradePrediction | ValuePrediction | BoxPrediction | MaskPrediction | PointPrediction
