"""Regions between stages: crops around boxes and mask components, tiles along a mask, and the way back.

All coordinates are original-image pixels, x right / y down, ``[x1, y1, x2, y2)`` (inclusive-exclusive, integers
after :func:`crop_window`). A crop's own pixel ``(x, y)`` is the original pixel ``(x + x1, y + y1)``; the next
model resamples the crop to its input (its Predictor's letterbox) and maps its own outputs back to the crop's
pixels, so :func:`boxes_to_original` / :func:`mask_to_original` only add the offset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Region:
    """One region cut from an image for the next stage.

    Attributes:
        xyxy: Integer window ``(x1, y1, x2, y2)`` in the original image, inside it.
        score: Confidence of the region in the source stage (box score; mask coverage for tiles).
        label: Source class (box label or mask class).
    """

    xyxy: tuple[int, int, int, int]
    score: float
    label: str

    @property
    def width(self) -> int:
        return self.xyxy[2] - self.xyxy[0]

    @property
    def height(self) -> int:
        return self.xyxy[3] - self.xyxy[1]


def crop_window(
    box: np.ndarray | list[float], *, margin: float, min_size: int, square: bool, image_hw: tuple[int, int]
) -> tuple[int, int, int, int]:
    """The integer crop window around ``box`` (``[x1, y1, x2, y2]`` float pixels).

    Each side grows by ``margin`` × the box's width (x) or height (y); a side shorter than ``min_size`` is grown
    around the centre to ``min_size``; ``square`` makes both sides the longer one. The window is then shifted
    (not shrunk) to lie inside the image where it fits, and clipped where it does not.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    h, w = image_hw
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    bw, bh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    cw, ch = bw * (1 + 2 * margin), bh * (1 + 2 * margin)
    cw, ch = max(cw, float(min_size)), max(ch, float(min_size))
    if square:
        cw = ch = max(cw, ch)
    cw, ch = min(cw, float(w)), min(ch, float(h))
    left = min(max(cx - cw / 2, 0.0), w - cw)
    top = min(max(cy - ch / 2, 0.0), h - ch)
    ix1, iy1 = int(np.floor(left)), int(np.floor(top))
    ix2, iy2 = min(w, max(ix1 + 1, int(np.ceil(left + cw)))), min(h, max(iy1 + 1, int(np.ceil(top + ch))))
    return ix1, iy1, ix2, iy2


def mask_components(mask: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """Bounding boxes ``[x1, y1, x2, y2)`` of the 8-connected components of a bool mask, largest first.

    The second element is the component's area in pixels (used as its score order).
    """
    from scipy import ndimage

    labels, _ = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    found = []
    for k, window in enumerate(ndimage.find_objects(labels), start=1):
        if window is None:
            continue
        ys, xs = window
        area = float((labels[window] == k).sum())
        found.append((np.array([xs.start, ys.start, xs.stop, ys.stop], dtype=np.float64), area))
    return sorted(found, key=lambda item: -item[1])


def tiles_along(mask: np.ndarray, *, size: int, stride: int, min_coverage: float, max_tiles: int) -> list[Region]:
    """Square tiles of ``size`` pixels on a grid of ``stride`` where the mask covers ≥ ``min_coverage``.

    The grid is anchored at the mask's bounding box; tiles are shifted inside the image. Returns at most
    ``max_tiles`` tiles, the best covered first (score = coverage).
    """
    h, w = mask.shape
    if not mask.any():
        return []
    size_y, size_x = min(size, h), min(size, w)
    ys, xs = np.nonzero(mask)
    tiles: dict[tuple[int, int, int, int], float] = {}
    for top in range(int(ys.min()), int(ys.max()) + 1, stride):
        for left in range(int(xs.min()), int(xs.max()) + 1, stride):
            y1, x1 = min(top, h - size_y), min(left, w - size_x)
            window = (x1, y1, x1 + size_x, y1 + size_y)
            if window in tiles:
                continue
            coverage = float(mask[y1 : y1 + size_y, x1 : x1 + size_x].mean())
            if coverage >= min_coverage:
                tiles[window] = coverage
    best = sorted(tiles.items(), key=lambda item: (-item[1], item[0][1], item[0][0]))[:max_tiles]
    return [Region(window, score, "") for window, score in best]


def cut(image: np.ndarray, region: Region) -> np.ndarray:
    """The region's pixels of a ``(H, W)`` (or ``(C, H, W)``) image (a copy)."""
    x1, y1, x2, y2 = region.xyxy
    return np.ascontiguousarray(image[..., y1:y2, x1:x2])


def boxes_to_original(boxes_xyxy: np.ndarray, region: Region) -> np.ndarray:
    """Boxes in a crop's pixels → original pixels (``(K, 4)``)."""
    offset = np.array([region.xyxy[0], region.xyxy[1], region.xyxy[0], region.xyxy[1]], dtype=np.float64)
    return np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4) + offset


def mask_to_original(mask: np.ndarray, region: Region, image_hw: tuple[int, int]) -> np.ndarray:
    """A crop's ``(h, w)`` mask placed into a zero ``image_hw`` mask of the original image."""
    out = np.zeros(image_hw, dtype=mask.dtype)
    x1, y1, x2, y2 = region.xyxy
    out[y1:y2, x1:x2] = mask[: y2 - y1, : x2 - x1]
    return out


def overlaps(region: Region, boxes_xyxy: np.ndarray) -> bool:
    """Whether the region holds the centre of, or overlaps by IoU ≥ 0.1, any of the (truth) boxes."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    if not len(boxes):
        return False
    x1, y1, x2, y2 = region.xyxy
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    if np.any((cx >= x1) & (cx < x2) & (cy >= y1) & (cy < y2)):
        return True
    from osteon.data.boxes import box_iou

    return bool(np.any(box_iou(np.array([region.xyxy], dtype=np.float64), boxes) >= 0.1))
