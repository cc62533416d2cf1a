"""A gallery of true/false positives/negatives (or best/worst cases) with their class-activation maps."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from PIL import Image as PILImage

from osteon.explain.geometry import fit_within, to_original
from osteon.explain.overlay import blend, with_colorbar
from osteon.report.figures import png_data_uri
from osteon.report.rundata import RunData, usable

if TYPE_CHECKING:
    from osteon.engine.predictor import Predictor


@dataclass
class GalleryItem:
    """One case: its name, reference and prediction, and its image with the CAM over it (a data URI)."""

    name: str
    truth: str
    prediction: str
    score: str
    uri: str = ""
    error: str = ""


@dataclass
class GalleryGroup:
    title: str
    description: str
    items: list[GalleryItem] = field(default_factory=list)


def select_cases(
    data: RunData, key: str, *, per_group: int = 3
) -> tuple[list[tuple[str, str, pd.DataFrame]], str | None]:
    """Cases to show: ``[(title, description, rows)]`` and the class whose map is drawn (``None``: predicted).

    The task's report adapter chooses (:meth:`~osteon.report.kinds.ReportKind.gallery_cases`): binary
    classification the most confident true/false positives/negatives at the operating point; multiclass and
    grading the most confident correct predictions and errors; regression the largest and smallest errors;
    segmentation the lowest and highest Dice; detection detected and missed findings and false alarms.
    """
    frame = usable(data.predictions.get(key, pd.DataFrame(columns=["truth"])))
    if frame.empty:
        return [], None
    return data.kind.gallery_cases(data, key, frame, per_group)


def build_gallery(
    data: RunData,
    key: str,
    predictor: Predictor | None,
    *,
    per_group: int = 3,
    method: str = "gradcam",
    max_side: int = 256,
) -> tuple[list[GalleryGroup], list[Path]]:
    """The gallery groups (with CAM thumbnails when a predictor is given) and the images shown."""
    from osteon.explain.explainer import input_maps

    selected, target = select_cases(data, key, per_group=per_group)
    kind = data.kind
    groups, shown = [], []
    for title, description, rows in selected:
        group = GalleryGroup(title, description)
        for _, row in rows.iterrows():
            path = Path(row["case"])
            item = GalleryItem(
                name=data.dataset_relative(row["case"]),
                truth=kind.gallery_text(row["truth"]),
                prediction=kind.gallery_text(kind.gallery_prediction(row)),
                score=_score_text(row, target),
            )
            if predictor is not None:
                try:
                    maps = input_maps(predictor, path, method=method, targets=[target] if target else None)
                    if not maps.maps:
                        item.error = "nothing predicted to explain"
                        group.items.append(item)
                        continue
                    item.uri = thumbnail(path, maps.maps[0], maps.geometry, predictor, max_side=max_side)
                    shown.append(path)
                except Exception as exc:  # one unreadable or unexplainable image must not sink the report
                    item.error = f"no map: {type(exc).__name__}: {exc}"
            group.items.append(item)
        groups.append(group)
    return groups, shown


def thumbnail(path: Path, input_map: np.ndarray, geometry: object, predictor: Predictor, *, max_side: int) -> str:
    """The image (as displayed) with the map over it and a colour bar, longest side ``max_side``, as a data URI."""
    from osteon.io import read_image, to_grayscale_float

    hw = fit_within(geometry.original_hw, max_side)  # type: ignore[attr-defined]
    grey = to_grayscale_float(read_image(path, size_hint=max(hw)))
    if grey.shape != hw:
        pil = PILImage.fromarray((np.clip(grey, 0, 1) * 255).astype(np.uint8)).resize(
            (hw[1], hw[0]), PILImage.Resampling.LANCZOS
        )
        grey = np.asarray(pil, dtype=np.float32) / 255.0
    cam = to_original(input_map, geometry, predictor.preprocessing, out_hw=hw)  # type: ignore[arg-type]
    buffer = io.BytesIO()
    PILImage.fromarray(with_colorbar(blend(grey, cam))).save(buffer, format="PNG")
    return png_data_uri(buffer.getvalue())


def _score_text(row: pd.Series, target: str | None) -> str:
    if "_label" in row and pd.notna(row.get("_s")):
        return f"{row['_label']} {float(row['_s']):.3f}"
    if target is not None and f"prob_{target}" in row:
        return f"P({target}) = {float(row[f'prob_{target}']):.3f}"
    probs = {k: v for k, v in row.items() if str(k).startswith("prob_")}
    if probs:
        best = max(probs, key=lambda k: float(probs[k]))
        return f"P({best.removeprefix('prob_')}) = {float(probs[best]):.3f}"
    return ""
