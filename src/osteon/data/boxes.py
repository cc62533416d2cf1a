"""Bounding boxes: parsing Manifest ``boxes``, format conversions, and the letterbox mapping.

Inside Osteon a box is **pixel xyxy** in the original image: ``[x1, y1, x2, y2]`` with x to the right,
y down, the corners inclusive-exclusive (a box covering pixel columns 3..5 is ``x1=3, x2=6``), so
``width = x2 - x1``. Other conventions are converted at the edges only:

* COCO ``bbox`` ``[x, y, w, h]`` (top-left corner, pixels) — :func:`xyxy_to_xywh` / :func:`xywh_to_xyxy`;
* YOLO ``cx cy w h`` normalised by the image width and height — :func:`xyxy_to_cxcywhn` / :func:`cxcywhn_to_xyxy`;
* the model's input space, the letterboxed square of :class:`~osteon.data.transforms.Letterbox`
  (``input = original * scale + (pad_x, pad_y)``) — :func:`to_input_space` / :func:`to_original_space`.

Arrays are ``(K, 4)`` float; every function accepts ``K = 0``. The conversions and the IoU are
``torchvision.ops`` (``box_convert``, ``box_iou``) on float64 tensors, imported when first used so that
reading a Manifest does not import torch.

Box JSON (a Manifest ``boxes`` cell, a ``pred_boxes`` column) is read here and nowhere else:
:func:`json_list` (the JSON list of any annotation column), :func:`box_records` (validated box dicts) and
:func:`parse_boxes` (arrays with class indices, checked against the image) build on each other.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from osteon.errors import ConfigError, DatasetFormatError

if TYPE_CHECKING:
    from osteon.data.transforms import Letterbox

#: Boxes may reach this many pixels outside the image before they count as wrong (annotation tools
#: round; FracAtlas has corners at 2880.0000000000005 in 2880-pixel images). Within it they are clipped.
OUTSIDE_TOLERANCE_PX = 1.0


def as_boxes(boxes: Any) -> np.ndarray:
    """``boxes`` as a ``(K, 4)`` float64 array (an empty input gives ``(0, 4)``)."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"boxes must have shape (K, 4); got {arr.shape}.")
    return arr


def _convert(boxes: Any, in_fmt: str, out_fmt: str) -> np.ndarray:
    """``torchvision.ops.box_convert`` on a float64 copy of ``boxes`` (formats ``xyxy``, ``xywh``, ``cxcywh``)."""
    import torch
    from torchvision.ops import box_convert

    return box_convert(torch.from_numpy(as_boxes(boxes).copy()), in_fmt=in_fmt, out_fmt=out_fmt).numpy()


def xywh_to_xyxy(boxes: Any) -> np.ndarray:
    """COCO ``[x, y, w, h]`` → ``[x1, y1, x2, y2]``.

    Example:
        >>> xywh_to_xyxy([[10, 20, 5, 8]]).tolist()
        [[10.0, 20.0, 15.0, 28.0]]
    """
    return _convert(boxes, "xywh", "xyxy")


def xyxy_to_xywh(boxes: Any) -> np.ndarray:
    """``[x1, y1, x2, y2]`` → COCO ``[x, y, w, h]``."""
    return _convert(boxes, "xyxy", "xywh")


def xyxy_to_cxcywhn(boxes: Any, *, width: float, height: float) -> np.ndarray:
    """Pixel xyxy → YOLO ``[cx, cy, w, h]`` normalised to 0..1 by the image ``width`` and ``height``."""
    scale = np.array([width, height, width, height], dtype=np.float64)
    return _convert(boxes, "xyxy", "cxcywh") / scale


def cxcywhn_to_xyxy(boxes: Any, *, width: float, height: float) -> np.ndarray:
    """YOLO normalised ``[cx, cy, w, h]`` → pixel xyxy (inverse of :func:`xyxy_to_cxcywhn`)."""
    scale = np.array([width, height, width, height], dtype=np.float64)
    return _convert(as_boxes(boxes) * scale, "cxcywh", "xyxy")


def to_input_space(boxes: Any, geometry: Letterbox) -> np.ndarray:
    """Original-pixel xyxy → the letterboxed model input: ``x * scale + pad_x``, ``y * scale + pad_y``."""
    b = as_boxes(boxes)
    offset = np.array([geometry.pad_x, geometry.pad_y, geometry.pad_x, geometry.pad_y], dtype=np.float64)
    return b * geometry.scale + offset


def to_original_space(boxes: Any, geometry: Letterbox, *, clip: bool = True) -> np.ndarray:
    """Input-space xyxy → original pixels (inverse of :func:`to_input_space`), clipped to the image by default."""
    b = as_boxes(boxes)
    offset = np.array([geometry.pad_x, geometry.pad_y, geometry.pad_x, geometry.pad_y], dtype=np.float64)
    out = (b - offset) / geometry.scale
    if clip:
        h, w = geometry.original_hw
        out = clip_boxes(out, width=w, height=h)
    return out


def clip_boxes(boxes: Any, *, width: float, height: float) -> np.ndarray:
    """Clip xyxy boxes to ``[0, width] × [0, height]``."""
    b = as_boxes(boxes).copy()
    b[:, 0::2] = b[:, 0::2].clip(0, width)
    b[:, 1::2] = b[:, 1::2].clip(0, height)
    return b


def box_area(boxes: Any) -> np.ndarray:
    """``(K,)`` areas of xyxy boxes (0 for degenerate ones)."""
    b = as_boxes(boxes)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def box_iou(a: Any, b: Any) -> np.ndarray:
    """``(K, M)`` intersection over union of two sets of xyxy boxes: ``torchvision.ops.box_iou``.

    COCO's convention (areas are ``w * h``, no +1). Where the union is empty (two zero-area boxes) the
    IoU is 0 rather than torchvision's nan; a box with ``x2 < x1`` or ``y2 < y1`` overlaps nothing (IoU 0).

    Example:
        >>> box_iou([[0, 0, 10, 10]], [[5, 0, 15, 10]]).round(3).tolist()
        [[0.333]]
    """
    import torch
    from torchvision.ops import box_iou as tv_box_iou

    iou = tv_box_iou(torch.from_numpy(as_boxes(a).copy()), torch.from_numpy(as_boxes(b).copy())).numpy()
    return np.nan_to_num(iou, nan=0.0)


@dataclass(frozen=True)
class ImageBoxes:
    """The boxes of one image: ground truth (``scores`` None) or predictions.

    Attributes:
        boxes: ``(K, 4)`` float xyxy pixels.
        labels: ``(K,)`` int class indices into the task's class names (no background index).
        scores: ``(K,)`` float confidences for predictions; ``None`` for ground truth.
    """

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls, *, scored: bool = False) -> ImageBoxes:
        return cls(np.zeros((0, 4)), np.zeros(0, dtype=np.int64), np.zeros(0) if scored else None)


def json_list(value: Any, *, image: str = "image", column: str = "boxes") -> list[Any]:
    """One JSON-list cell (``boxes``, ``polygons``, ``pred_boxes``) → a Python list; empty cells give ``[]``.

    Args:
        value: JSON text, an already parsed list, or an empty cell (None, NA, nan, ``""``).
        image: The row's image (or any text naming the row), for messages.
        column: The column's name, for messages.

    Raises:
        DatasetFormatError: not valid JSON, or JSON that is not a list.

    Example:
        >>> json_list('[{"xyxy": [1, 2, 5, 6], "label": "fx"}]')
        [{'xyxy': [1, 2, 5, 6], 'label': 'fx'}]
    """
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        if not value.strip():
            return []
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise DatasetFormatError(
                f"{image}: {column!r} is not valid JSON ({exc}). Fix: write it as a JSON list, e.g. "
                '[{"xyxy": [x1, y1, x2, y2], "label": "fracture"}], or leave the cell empty.'
            ) from exc
    if not isinstance(value, list | tuple):
        raise DatasetFormatError(
            f"{image}: {column!r} must be a JSON list, got {type(value).__name__} {value!r:.80}. "
            "Fix: wrap the entries in [ ... ]."
        )
    return list(value)


def box_records(value: Any, *, image: str = "image", scored: bool = False, column: str = "boxes") -> list[dict]:
    """One box cell → validated records ``{"xyxy": [4 floats], "label": str(, "score": float)}``.

    Checks the shape of every entry only: a dict with ``xyxy`` of 4 finite numbers, a non-empty ``label``
    and, when ``scored`` (predictions) or present, a finite numeric ``score``. Whether a box has a positive
    size, lies in the image or names a known class is for the caller (:func:`parse_boxes` raises,
    ``osteon data check`` reports). Other keys of an entry are kept.

    Args:
        value: As in :func:`json_list`.
        image: The row's image, for messages.
        scored: Require a ``score`` on every box (a ``pred_boxes`` cell).
        column: The column's name, for messages.

    Raises:
        DatasetFormatError: the cell is not a JSON list, or an entry is malformed (the message names the
            image and the box number).

    Example:
        >>> box_records('[{"xyxy": [1, 2, 5, 6], "label": "fx", "score": 0.5}]', scored=True)
        [{'xyxy': [1.0, 2.0, 5.0, 6.0], 'label': 'fx', 'score': 0.5}]
    """
    records = []
    for k, item in enumerate(json_list(value, image=image, column=column)):
        xyxy = item.get("xyxy") if isinstance(item, dict) else None
        if not (
            isinstance(xyxy, list | tuple) and len(xyxy) == 4 and all(_is_number(v) and math.isfinite(v) for v in xyxy)
        ):
            raise DatasetFormatError(
                f"{image}: box #{k} {item!r:.120} has no 'xyxy': [x1, y1, x2, y2] of 4 numbers. "
                'Fix: write boxes as {"xyxy": [x1, y1, x2, y2], "label": name} in original-image pixels.'
            )
        label = item.get("label")
        if isinstance(label, bool) or not isinstance(label, str | int | np.integer) or not str(label).strip():
            raise DatasetFormatError(
                f"{image}: box #{k} {item!r:.120} has no 'label'. Fix: give every box its class name, "
                'e.g. {"xyxy": [...], "label": "fracture"}.'
            )
        record = {**item, "xyxy": [float(v) for v in xyxy], "label": str(label)}
        if scored or item.get("score") is not None:
            score = item.get("score")
            if not (_is_number(score) and math.isfinite(score)):
                raise DatasetFormatError(
                    f"{image}: predicted box #{k} has no numeric 'score' ({score!r}). "
                    "Fix: give every predicted box its confidence, a number in [0, 1]."
                )
            record["score"] = float(score)
        records.append(record)
    return records


def parse_boxes(
    value: Any,
    *,
    class_index: Mapping[str, int],
    image: str = "image",
    size_hw: tuple[int, int] | None = None,
    tolerance: float = OUTSIDE_TOLERANCE_PX,
    scored: bool = False,
) -> ImageBoxes:
    """One Manifest ``boxes`` cell (JSON text or a parsed list) → validated :class:`ImageBoxes`.

    Built on :func:`box_records` (the shape of each entry), then checks sizes, the image and the classes.

    Args:
        value: ``[{"xyxy": [x1, y1, x2, y2], "label": name, ("score": s)}, ...]`` as JSON text or a list.
        class_index: Class name → index; a label outside it is an error.
        image: The image's name, for messages.
        size_hw: ``(height, width)`` of the image; when given, boxes reaching more than ``tolerance``
            pixels outside it are an error, and those within the tolerance are clipped.
        tolerance: Pixels a box may reach outside the image (rounding of annotation tools).
        scored: Read the ``score`` of each box (predictions).

    Raises:
        DatasetFormatError: malformed JSON or entry, a box with zero or negative width/height
            (``x2 <= x1`` or ``y2 <= y1``: xywh given as xyxy?), or a box outside the image.
        ConfigError: a label that is not one of the classes.

    Example:
        >>> parse_boxes('[{"xyxy": [1, 2, 5, 6], "label": "fracture"}]', class_index={"fracture": 0}).labels.tolist()
        [0]
    """
    records = box_records(value, image=image, scored=scored)
    boxes = np.zeros((len(records), 4), dtype=np.float64)
    labels = np.zeros(len(records), dtype=np.int64)
    scores = np.zeros(len(records), dtype=np.float64)
    for k, record in enumerate(records):
        x1, y1, x2, y2 = record["xyxy"]
        if x2 <= x1 or y2 <= y1:
            raise DatasetFormatError(
                f"{image}: box #{k} {[x1, y1, x2, y2]} has a zero or negative size (width {x2 - x1:g}, "
                f"height {y2 - y1:g}). Fix: boxes are [x1, y1, x2, y2] with x2 > x1 and y2 > y1; convert "
                "[x, y, w, h] boxes with x2 = x + w, y2 = y + h, or delete the box."
            )
        label = record["label"]
        if label not in class_index:
            raise ConfigError(
                f"{image}: box #{k} has category {label!r}, which is not one of the classes "
                f"{sorted(class_index)}. Fix: correct the label, or train a model that knows this category."
            )
        boxes[k] = (x1, y1, x2, y2)
        labels[k] = class_index[label]
        if scored:
            scores[k] = record["score"]
    if size_hw is not None and len(boxes):
        boxes = _inside(boxes, size_hw, image=image, tolerance=tolerance)
    return ImageBoxes(boxes, labels, scores if scored else None)


def parse_box_column(
    values: Iterable[Any], images: Iterable[Any], *, class_index: Mapping[str, int], scored: bool = False
) -> list[ImageBoxes]:
    """:func:`parse_boxes` on every cell of a box column (``truth``, ``pred_boxes``), each named by its image."""
    return [
        parse_boxes(v, class_index=class_index, image=str(i), scored=scored)
        for v, i in zip(values, images, strict=True)
    ]


def _inside(boxes: np.ndarray, size_hw: tuple[int, int], *, image: str, tolerance: float) -> np.ndarray:
    h, w = size_hw
    over = np.maximum.reduce(
        [-boxes[:, 0], -boxes[:, 1], boxes[:, 2] - w, boxes[:, 3] - h, np.zeros(len(boxes))]
    )  # how far each box reaches outside, in pixels
    bad = np.flatnonzero(over > tolerance)
    if len(bad):
        k = int(bad[0])
        raise DatasetFormatError(
            f"{image}: box #{k} {[round(v, 1) for v in boxes[k].tolist()]} reaches {over[k]:.1f} px outside the "
            f"{w}×{h} image ({len(bad)} such box(es) in this image). Fix: check the coordinate convention "
            "(xyxy vs xywh, normalised vs pixels, EXIF rotation), or correct the annotation."
        )
    clipped = clip_boxes(boxes, width=w, height=h)
    if ((clipped[:, 2] <= clipped[:, 0]) | (clipped[:, 3] <= clipped[:, 1])).any():
        raise DatasetFormatError(f"{image}: a box lies on the image border with no area inside the image.")
    return clipped


def boxes_to_records(
    boxes: Any,
    labels: Sequence[int],
    class_names: Sequence[str],
    scores: Sequence[float] | None = None,
    *,
    digits: int = 2,
) -> list[dict[str, Any]]:
    """Arrays → the Manifest/predictions JSON form ``[{"xyxy": [...], "label": name, "score": s}, ...]``."""
    b = as_boxes(boxes)
    out: list[dict[str, Any]] = []
    for k in range(len(b)):
        record: dict[str, Any] = {
            "xyxy": [round(float(v), digits) for v in b[k]],
            "label": class_names[int(labels[k])],
        }
        if scores is not None:
            record["score"] = round(float(scores[k]), 4)
        out.append(record)
    return out


def records_to_json(records: list[dict[str, Any]]) -> str:
    """Compact JSON text of box records (the ``boxes`` / ``pred_boxes`` column format)."""
    return json.dumps(records, separators=(",", ":"))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
