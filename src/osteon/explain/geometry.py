"""Maps on the model's square input → maps on the original image (undoing the letterbox)."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from osteon.data.transforms import Letterbox, Preprocessing


def input_region(box: Letterbox, size: int, *, letterbox: bool = True) -> tuple[int, int, int, int]:
    """Where the original image sits in the ``(size, size)`` input: ``(top, left, height, width)`` in pixels.

    With ``input = original * scale + (pad_x, pad_y)`` (see :class:`~osteon.data.transforms.Letterbox`),
    the original ``(H, W)`` covers rows ``pad_y .. pad_y + round(H * scale)`` and the matching columns.
    Without letterboxing the image fills the whole square.
    """
    if not letterbox:
        return 0, 0, size, size
    height, width = box.original_hw
    h = min(size - box.pad_y, max(1, round(height * box.scale)))
    w = min(size - box.pad_x, max(1, round(width * box.scale)))
    return box.pad_y, box.pad_x, h, w


def to_original(
    input_map: np.ndarray,
    box: Letterbox,
    prep: Preprocessing,
    *,
    out_hw: tuple[int, int] | None = None,
) -> np.ndarray:
    """Crop the letterbox padding off a map on the model input and resize it to the original image.

    Args:
        input_map: ``(S, S)`` map on the model input (``S = prep.image_size``), row = y, column = x.
        box: The image's letterbox geometry from :func:`osteon.data.transforms.load_unit_image`.
        prep: The run's preprocessing (``letterbox`` says whether padding was used).
        out_hw: Size of the result; default the original ``(H, W)`` (as displayed: EXIF rotation applied).
            Pass a proportional smaller size for thumbnails.

    Returns:
        ``(H, W)`` float32 map aligned with the original image's pixels.
    """
    size = prep.image_size
    if input_map.shape != (size, size):
        raise ValueError(f"input_map must be ({size}, {size}) (the model input); got {input_map.shape}.")
    top, left, h, w = input_region(box, size, letterbox=prep.letterbox)
    crop = np.ascontiguousarray(input_map[top : top + h, left : left + w], dtype=np.float32)
    target = tuple(int(v) for v in (out_hw or box.original_hw))
    if crop.shape == target:
        return crop
    tensor = torch.from_numpy(crop)[None, None]
    shrink = target[0] < crop.shape[0] or target[1] < crop.shape[1]
    resized = F.interpolate(tensor, size=target, mode="bilinear", align_corners=False, antialias=shrink)
    return resized[0, 0].numpy()


def fit_within(hw: tuple[int, int], max_side: int) -> tuple[int, int]:
    """``(h, w)`` scaled down (never up) so that the longer side is at most ``max_side``."""
    h, w = hw
    scale = min(1.0, max_side / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))
