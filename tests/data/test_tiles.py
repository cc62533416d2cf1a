"""Tile geometry of large images: the grid covers the image, boxes map back to original pixels, foreground selection,
cutting and stitching (:mod:`osteon.data.tiles`)."""

from __future__ import annotations

import numpy as np
import pytest

from osteon.data.tiles import (
    axis_starts,
    choose_tiles,
    cut_tiles,
    foreground_fractions,
    stitch,
    tile_boxes,
    tile_origins,
)


@pytest.mark.parametrize(("height", "width", "size"), [(256, 256, 64), (300, 200, 64), (50, 700, 128), (64, 64, 64)])
def test_tiles_cover_every_pixel_and_stay_inside(height: int, width: int, size: int) -> None:
    origins = tile_origins(height, width, size)
    covered = np.zeros((height, width), dtype=int)
    for y, x in origins:
        covered[y : y + size, x : x + size] += 1
        assert y >= 0 and x >= 0
        assert y + size <= max(height, size) and x + size <= max(width, size)
    assert covered.min() >= 1
    assert len(origins) == len(axis_starts(height, size)) * len(axis_starts(width, size))
    assert len(axis_starts(width, size)) == max(1, -(-width // size))  # ceil: overlaps are less than a tile


def test_tile_boxes_map_back_to_original_pixels() -> None:
    """An image of 600 × 400 tiled at half scale (300 × 200): boxes are in original pixels and cover it."""
    origins = tile_origins(300, 200, 128)
    boxes = tile_boxes(origins, 128, (300, 200), (600, 400))
    assert boxes[:, [0, 1]].min() == 0 and boxes[:, 2].max() == 400 and boxes[:, 3].max() == 600
    assert np.allclose(boxes[0], [0, 0, 256, 256])
    # a tile padded past the border is clipped to the image
    assert np.allclose(tile_boxes(np.array([[0, 0]]), 128, (50, 60), (100, 120)), [[0, 0, 120, 100]])


def test_foreground_fractions_and_deterministic_choice() -> None:
    image = np.zeros((128, 128), dtype=np.uint8)
    image[:64, :64] = 200  # one bright quadrant, a half-bright one
    image[64:, 64:96] = 200
    origins = tile_origins(128, 128, 64)  # (0,0) (0,64) (64,0) (64,64)
    fractions = foreground_fractions(image, origins, 64)
    assert np.allclose(fractions, [1.0, 0.0, 0.0, 0.5])
    assert choose_tiles(fractions, 2).tolist() == [0, 3]
    assert choose_tiles(fractions, 2).tolist() == choose_tiles(fractions, 2).tolist()
    assert choose_tiles(fractions, 10).tolist() == [0, 1, 2, 3]  # fewer tiles than the cap: all of them
    unit = image.astype(np.float32) / 255
    assert np.allclose(foreground_fractions(unit, origins, 64), fractions)  # unit range and uint8 agree


def test_random_choice_draws_among_foreground_tiles_only() -> None:
    fractions = np.array([0.0, 0.9, 0.0, 0.8, 0.5, 0.0, 0.7, 0.02])
    rng = np.random.default_rng(0)
    draws = {tuple(choose_tiles(fractions, 3, rng=rng).tolist()) for _ in range(50)}
    assert len(draws) > 1  # random ...
    assert all(set(d) <= {1, 3, 4, 6} and len(d) == 3 for d in draws)  # ... among foreground tiles only
    # fewer foreground tiles than the cap: all of them, topped up with the most foreground of the rest
    assert choose_tiles(np.array([0.0, 0.9, 0.05, 0.0]), 2, rng=rng).tolist() == [1, 2]


def test_cut_pads_and_stitch_keeps_the_maximum() -> None:
    image = np.arange(100 * 70, dtype=np.uint16).reshape(100, 70)
    origins = tile_origins(100, 70, 64)
    tiles = cut_tiles(image, origins, 64)
    assert tiles.shape == (len(origins), 64, 64) and tiles.dtype == np.uint16
    y, x = origins[-1]
    assert np.array_equal(tiles[-1], image[y : y + 64, x : x + 64])
    small = cut_tiles(image[:40, :30], np.array([[0, 0]]), 64)
    assert np.array_equal(small[0, :40, :30], image[:40, :30]) and small[0, 40:].max() == 0  # zero padding
    # stitching the tiles back gives the image; per-tile values paint their area, overlaps take the maximum
    assert np.array_equal(stitch(tiles.astype(np.float32), origins, 64, (100, 70)), image.astype(np.float32))
    painted = stitch(np.arange(1, len(origins) + 1, dtype=np.float32), origins, 64, (100, 70))
    assert painted.shape == (100, 70) and painted[0, 0] == 1 and painted[-1, -1] == len(origins)
