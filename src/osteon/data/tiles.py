"""Tiles of a large 2D image: the grid, foreground selection, cutting, and stitching maps back.

Coordinates are ``(y, x)`` origins of square ``size × size`` tiles in the pixels of the image being tiled (the image
at the tile scale); :func:`tile_boxes` maps them to ``(x1, y1, x2, y2)`` boxes in the original pixels. The grid covers
every pixel: along each axis ``ceil(length / size)`` tiles are spread evenly from the first pixel to the last, so
neighbours overlap by less than one tile and the last tile ends on the border. An axis shorter than ``size`` gets one
tile at 0 that is zero-padded past the image.

Radiographs have black borders and collimation; :func:`foreground_fractions` scores each tile by its share of pixels
brighter than :data:`FOREGROUND_LEVEL`, and :func:`choose_tiles` keeps the ``max_tiles`` tiles with the most
foreground (deterministic), or a random draw among the foreground tiles at training time.
"""

from __future__ import annotations

import math

import numpy as np

#: A pixel is foreground when brighter than this (unit range): radiograph borders and collimation are near black.
FOREGROUND_LEVEL = 0.05
#: A tile takes part in the random training draw when at least this share of its pixels is foreground.
MIN_FOREGROUND = 0.1


def axis_starts(length: int, size: int) -> list[int]:
    """Tile starts along one axis: ``ceil(length / size)`` tiles, evenly spread, the last ending at ``length``."""
    if length <= size:
        return [0]
    count = math.ceil(length / size)
    return [round(v) for v in np.linspace(0, length - size, count)]


def tile_origins(height: int, width: int, size: int) -> np.ndarray:
    """``(T, 2)`` int64 ``(y, x)`` origins of the tiles covering a ``height × width`` image, row-major."""
    ys, xs = axis_starts(height, size), axis_starts(width, size)
    return np.array([(y, x) for y in ys for x in xs], dtype=np.int64).reshape(-1, 2)


def foreground_fractions(
    image: np.ndarray, origins: np.ndarray, size: int, *, level: float = FOREGROUND_LEVEL
) -> np.ndarray:
    """``(T,)`` share of each tile's ``size²`` pixels brighter than ``level`` (``image`` in unit range, or uint8/16).

    Padding past the image counts as background.
    """
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(np.asarray(image).dtype, 1.0)
    bright = np.asarray(image) > level * scale
    # an integral image gives every tile's count in O(1)
    integral = np.pad(bright.cumsum(0, dtype=np.int64).cumsum(1), ((1, 0), (1, 0)))
    h, w = bright.shape
    out = np.empty(len(origins), dtype=np.float64)
    for k, (y, x) in enumerate(origins):
        y2, x2 = min(int(y) + size, h), min(int(x) + size, w)
        out[k] = integral[y2, x2] - integral[y, x2] - integral[y2, x] + integral[y, x]
    return out / float(size * size)


def choose_tiles(
    fractions: np.ndarray,
    max_tiles: int,
    *,
    rng: np.random.Generator | None = None,
    min_foreground: float = MIN_FOREGROUND,
) -> np.ndarray:
    """Indices of at most ``max_tiles`` tiles, in grid order.

    Without ``rng``: the tiles with the most foreground (ties: grid order), the same every call. With ``rng``
    (training): a random draw among the tiles with at least ``min_foreground`` foreground, topped up with the most
    foreground of the others when fewer qualify.
    """
    fractions = np.asarray(fractions, dtype=np.float64)
    ranked = np.argsort(-fractions, kind="stable")
    if rng is None or len(fractions) <= max_tiles:
        return np.sort(ranked[:max_tiles])
    eligible = np.flatnonzero(fractions >= min_foreground)
    if len(eligible) <= max_tiles:
        rest = [i for i in ranked if i not in set(eligible.tolist())]
        return np.sort(np.concatenate([eligible, np.array(rest[: max_tiles - len(eligible)], dtype=np.int64)]))
    return np.sort(rng.choice(eligible, size=max_tiles, replace=False))


def cut_tiles(image: np.ndarray, origins: np.ndarray, size: int) -> np.ndarray:
    """``(T, size, size)`` tiles of a 2D ``image`` (its dtype kept), zero-padded where a tile passes the border."""
    h, w = image.shape
    out = np.zeros((len(origins), size, size), dtype=image.dtype)
    for k, (y, x) in enumerate(origins):
        patch = image[y : min(y + size, h), x : min(x + size, w)]
        out[k, : patch.shape[0], : patch.shape[1]] = patch
    return out


def tile_boxes(origins: np.ndarray, size: int, tiled_hw: tuple[int, int], original_hw: tuple[int, int]) -> np.ndarray:
    """``(T, 4)`` float ``(x1, y1, x2, y2)`` boxes of the tiles in original pixels, clipped to the image.

    ``tiled_hw`` is the size of the image that was tiled (the original at the tile scale).
    """
    sy, sx = original_hw[0] / tiled_hw[0], original_hw[1] / tiled_hw[1]
    origins = np.asarray(origins, dtype=np.float64).reshape(-1, 2)
    y1, x1 = origins[:, 0], origins[:, 1]
    y2, x2 = np.minimum(y1 + size, tiled_hw[0]), np.minimum(x1 + size, tiled_hw[1])
    return np.stack([x1 * sx, y1 * sy, x2 * sx, y2 * sy], axis=1)


def stitch(values: np.ndarray, origins: np.ndarray, size: int, tiled_hw: tuple[int, int]) -> np.ndarray:
    """Tile values painted onto the tiled image's grid, ``(H, W)`` float32; overlaps keep the maximum.

    Args:
        values: ``(T,)`` one value per tile (e.g. an attention weight), or ``(T, size, size)`` maps (per-tile CAMs).
        origins: ``(T, 2)`` ``(y, x)`` origins.
        size: Tile side.
        tiled_hw: ``(H, W)`` of the tiled image. Pixels no tile covers are 0.
    """
    h, w = tiled_hw
    canvas = np.zeros((h, w), dtype=np.float32)
    values = np.asarray(values, dtype=np.float32)
    for k, (y, x) in enumerate(np.asarray(origins, dtype=np.int64)):
        y2, x2 = min(int(y) + size, h), min(int(x) + size, w)
        patch = values[k] if values.ndim == 1 else values[k, : y2 - y, : x2 - x]
        np.maximum(canvas[y:y2, x:x2], patch, out=canvas[y:y2, x:x2])
    return canvas
