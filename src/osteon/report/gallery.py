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

    Binary: the most confident true positives, false positives, false negatives and true negatives at the
    operating point. Multiclass/grading: the most confident correct predictions and errors (grades: the
    largest grade errors). Regression: the largest and smallest absolute errors.
    """
    frame = usable(data.predictions.get(key, pd.DataFrame(columns=["truth"])))
    if frame.empty:
        return [], None
    names = [str(n) for n in data.task_state.get("class_names", [])]
    positive = data.task_state.get("positive_class")
    if positive is not None and len(names) == 2:
        score = frame[f"prob_{positive}"].astype(float)
        threshold = float(data.metrics.get(key, {}).get("threshold", 0.5))
        y = frame["truth"].astype(str) == positive
        called = score >= threshold
        groups = [
            ("True positives", "reference positive, model positive (highest scores)", frame[y & called], False),
            ("False positives", "reference negative, model positive (highest scores)", frame[~y & called], False),
            ("False negatives", "reference positive, model negative (lowest scores)", frame[y & ~called], True),
            ("True negatives", "reference negative, model negative (lowest scores)", frame[~y & ~called], True),
        ]
        out = [
            (t, d, rows.assign(_s=score[rows.index]).sort_values("_s", ascending=asc).head(per_group))
            for t, d, rows, asc in groups
        ]
        return out, positive
    if data.task in ("classify", "grade") and names:
        confidence = frame[[f"prob_{n}" for n in names]].max(axis=1)
        right = frame["truth"].astype(str) == frame["prediction"].astype(str)
        wrong = frame[~right].assign(_s=confidence[~right])
        if data.task == "grade":
            index = {n: i for i, n in enumerate(names)}
            gap = (frame["truth"].astype(str).map(index) - frame["prediction"].astype(str).map(index)).abs()
            wrong = wrong.assign(_gap=gap[~right]).sort_values(["_gap", "_s"], ascending=False)
            title = ("Largest grade errors", "reference and predicted grade furthest apart (then most confident)")
        else:
            wrong = wrong.sort_values("_s", ascending=False)
            title = ("Confident errors", "wrong predictions with the highest probability")
        correct = frame[right].assign(_s=confidence[right]).sort_values("_s", ascending=False)
        return [
            (
                "Confident correct predictions",
                "right predictions with the highest probability",
                correct.head(per_group),
            ),
            (*title, wrong.head(per_group)),
        ], None
    if data.task == "regress":
        error = (pd.to_numeric(frame["prediction"]) - pd.to_numeric(frame["truth"])).abs()
        ranked = frame.assign(_s=error).sort_values("_s", ascending=False)
        return [
            ("Largest errors", "largest |prediction − reference|", ranked.head(per_group)),
            ("Smallest errors", "smallest |prediction − reference|", ranked.tail(per_group).iloc[::-1]),
        ], None
    if data.task == "segment" and (dice := mean_dice(frame)) is not None:
        ranked = frame.assign(_s=dice, _label="mean Dice").dropna(subset=["_s"]).sort_values("_s")
        return [
            ("Lowest Dice", "worst overlap with the reference mask", ranked.head(per_group)),
            ("Highest Dice", "best overlap with the reference mask", ranked.tail(per_group).iloc[::-1]),
        ], None
    if data.task == "detect" and "max_score" in frame:
        score = pd.to_numeric(frame["max_score"], errors="coerce").fillna(0.0)
        has_box = frame["truth"].map(_has_boxes)
        ranked = frame.assign(_s=score, _label="highest box score")
        return [
            (
                "Detected findings",
                "reference boxes; highest box scores",
                ranked[has_box].sort_values("_s", ascending=False).head(per_group),
            ),
            (
                "Missed findings",
                "reference boxes; lowest box scores",
                ranked[has_box].sort_values("_s").head(per_group),
            ),
            (
                "False alarms",
                "no reference box; highest box scores",
                ranked[~has_box].sort_values("_s", ascending=False).head(per_group),
            ),
        ], None
    return [], None


def mean_dice(frame: pd.DataFrame) -> pd.Series | None:
    """Per-image Dice averaged over the foreground classes (``dice_<class>`` columns), or ``None``."""
    columns = [c for c in frame.columns if str(c).startswith("dice_")]
    if not columns:
        return None
    return frame[columns].apply(pd.to_numeric, errors="coerce").mean(axis=1)


def _has_boxes(value: object) -> bool:
    import json

    if not isinstance(value, str) or not value:
        return False
    try:
        return len(json.loads(value)) > 0
    except json.JSONDecodeError:
        return False


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
    groups, shown = [], []
    for title, description, rows in selected:
        group = GalleryGroup(title, description)
        for _, row in rows.iterrows():
            path = Path(row["case"])
            item = GalleryItem(
                name=data.dataset_relative(row["case"]),
                truth=_short(row["truth"]),
                prediction=_short(row.get("prediction", row.get("n_boxes", ""))),
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


def _short(value: object) -> str:
    """A cell for the gallery: JSON box lists become a count."""
    text = str(value)
    if text.startswith("[") and _has_boxes(text):
        import json

        return f"{len(json.loads(text))} box(es)"
    return "none" if text in ("[]", "<NA>", "nan") else text


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
